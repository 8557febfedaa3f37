"""The modbus_tcp driver against the real simulator (misto-sim): every metric of the built-in profiles
decodes to exactly what the simulator serves, and failures become the right edge errors."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from misto.edge.clock import SystemClock
from misto.edge.drivers import create_driver, driver_class
from misto.edge.drivers.modbus.tcp import ModbusTcpDriver
from misto.edge.errors import DeviceConnectionError, DeviceRejected, DeviceTimeout
from misto.edge.settings import settings_from_data
from tests.fixtures.net import LOOPBACK, free_port


def device(**fields: Any) -> Any:
    """One validated device config (through the real settings model)."""
    base = {"id": "dev-1", "driver": "modbus_tcp", "host": LOOPBACK, "timeout": 1, "retries": 0}
    settings = settings_from_data(
        {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}, "devices": [{**base, **fields}]}, env={}
    )
    return settings.devices[0]


def driver(**fields: Any) -> ModbusTcpDriver:
    made = create_driver(device(**fields), clock=SystemClock())
    assert isinstance(made, ModbusTcpDriver)
    return made


def test_registry() -> None:
    assert driver_class("modbus_tcp") is ModbusTcpDriver
    assert driver_class("modbus_rtu").__name__ == "ModbusRtuDriver"
    assert driver_class("modbus_rtu_tcp").__name__ == "ModbusRtuOverTcpDriver"
    with pytest.raises(KeyError, match=r"known drivers: .*modbus_rtu, modbus_rtu_tcp, modbus_tcp"):
        driver_class("bacnet")


def test_construction_does_no_io() -> None:
    # Nothing listens on this port: constructing (and planning) must not try to connect.
    made = driver(port=free_port(), profile="aq1")
    assert [(str(r.table), r.address, r.count) for r in made.plan] == [("input", 0, 12)]


@pytest.mark.parametrize("model", ["aq1", "nm1"])
async def test_profile_reads_what_the_simulator_serves(start_sim: Any, model: str) -> None:
    sim = start_sim(model)
    made = driver(port=sim.ports[model], profile=model)
    before = datetime.now(UTC)
    try:
        await made.start()
        readings = await made.read()
    finally:
        await made.close()
    after = datetime.now(UTC)
    expected = sim.values(model)
    assert sorted(r.metric for r in readings) == sorted(expected)
    for reading in readings:
        assert reading.value == pytest.approx(expected[reading.metric], rel=1e-6, abs=1e-9), reading.metric
        assert reading.device == "dev-1"
        assert before <= reading.ts <= after
        assert reading.ts.tzinfo is UTC
    units = {r.metric: r.unit for r in readings}
    assert units["temperature"] == "Cel"


async def test_inline_registers_with_a_gap(start_sim: Any) -> None:
    """The aq1 map written inline, out of order and with gaps the planner may read across."""
    sim = start_sim("aq1")
    rows = [
        {"metric": "atmosphericPressure", "table": "input", "address": 10, "type": "uint32", "scale": 0.01},
        {"metric": "pm25", "table": "input", "address": 0, "type": "uint16", "scale": 0.1, "unit": "ug/m3"},
        {"metric": "co", "table": "input", "address": 6, "type": "float32", "word_order": "little"},
    ]
    made = driver(port=sim.ports["aq1"], registers=rows, max_read_gap=5)
    assert [(r.address, r.count) for r in made.plan] == [(0, 12)]
    try:
        readings = {r.metric: r.value for r in await made.read()}  # read() connects on demand
    finally:
        await made.close()
    expected = sim.values("aq1")
    assert readings == pytest.approx({m: expected[m] for m in ("atmosphericPressure", "pm25", "co")}, rel=1e-6)


async def test_wrong_word_order_gives_other_values(start_sim: Any) -> None:
    """The test can fail: reading co with the wrong word order does not give the simulator's value."""
    sim = start_sim("aq1")
    made = driver(
        port=sim.ports["aq1"], registers=[{"metric": "co", "table": "input", "address": 6, "type": "float32"}]
    )
    try:
        readings = await made.read()
    finally:
        await made.close()
    assert all(r.value != pytest.approx(sim.values("aq1")["co"], rel=1e-3) for r in readings)


async def test_illegal_address_is_a_permanent_error(start_sim: Any) -> None:
    sim = start_sim("nm1")
    made = driver(
        port=sim.ports["nm1"], registers=[{"metric": "LAmax", "table": "holding", "address": 900, "type": "uint16"}]
    )
    try:
        with pytest.raises(DeviceRejected) as caught:
            await made.read()
    finally:
        await made.close()
    assert caught.value.code == 2
    assert not caught.value.retryable
    assert "illegal data address" in str(caught.value)
    assert caught.value.device_id == "dev-1"


async def test_unknown_unit_id_is_rejected(start_sim: Any) -> None:
    sim = start_sim("nm1")
    made = driver(port=sim.ports["nm1"], unit_id=9, profile="nm1")
    try:
        with pytest.raises((DeviceRejected, DeviceTimeout)) as caught:
            await made.read()
    finally:
        await made.close()
    assert "unit 9" in str(caught.value)
    assert caught.value.retryable  # a pymodbus server answers exception 4; a real RS-485 bus stays silent


async def test_connection_refused_is_retryable() -> None:
    made = driver(port=free_port(), profile="aq1")
    try:
        with pytest.raises(DeviceConnectionError) as caught:
            await made.start()
        assert caught.value.retryable
        with pytest.raises(DeviceConnectionError):
            await made.read()
    finally:
        await made.close()


async def test_silent_device_times_out_within_its_deadline() -> None:
    """A device that accepts the connection but never answers: timeout x (retries + 1), then DeviceTimeout."""
    connections: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(accept, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    made = driver(port=port, profile="aq1", timeout=0.2, retries=1)
    started = time.monotonic()
    try:
        with pytest.raises(DeviceTimeout) as caught:
            await made.read()
        elapsed = time.monotonic() - started
    finally:
        await made.close()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
    assert caught.value.retryable
    assert 0.35 <= elapsed < made.read_deadline


async def test_reconnects_after_the_device_comes_back(start_sim: Any) -> None:
    sim = start_sim("nm1")
    port = sim.ports["nm1"]
    made = driver(port=port, profile="nm1")
    try:
        assert len(await made.read()) == 3
        sim.stop()
        # Refused, or (when the request went out before the close was noticed) unanswered: retryable either way.
        with pytest.raises((DeviceConnectionError, DeviceTimeout)) as caught:
            await made.read()
        assert caught.value.retryable
        start_sim("nm1", ports={"nm1": port})
        assert len(await made.read()) == 3
    finally:
        await made.close()
