"""The modbus_rtu and modbus_rtu_tcp drivers against the real simulator on a pseudo-terminal bus:
built-in profiles decode to what the simulator serves, devices share one bus without collisions,
CRC errors and exception responses are counted per device, writes read back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from misto.edge.clock import SystemClock
from misto.edge.device_config.modbus import serial_bus_problems
from misto.edge.drivers import create_driver
from misto.edge.drivers.modbus.driver import ModbusDriver
from misto.edge.errors import ConfigError, DeviceConnectionError, DeviceRejected, DeviceTimeout, DriverError
from misto.edge.settings import settings_from_data
from tests.fixtures.misto_sim import SimProcess, start_simulator
from tests.fixtures.net import LOOPBACK, free_port


def settings(*devices: dict[str, Any]) -> Any:
    return settings_from_data(
        {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}, "devices": list(devices)}, env={}
    )


def rtu(device_id: str, bus: Path, unit: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": device_id,
        "driver": "modbus_rtu",
        "serial": {"port": str(bus)},
        "unit_id": unit,
        "timeout": 0.3,
        "retries": 1,
        **fields,
    }


def drivers(*devices: dict[str, Any]) -> list[ModbusDriver]:
    made = [create_driver(d, clock=SystemClock()) for d in settings(*devices).devices]
    assert all(isinstance(d, ModbusDriver) for d in made)
    return made  # type: ignore[return-value]


Start = Callable[..., SimProcess]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Start]:
    """``simulator(devices, faults=[...])`` starts ``misto-sim serve``; stopped after the test."""
    started: list[SimProcess] = []

    def start(devices: list[str], **options: Any) -> SimProcess:
        sim = start_simulator(tmp_path / f"sim{len(started)}", devices, **options)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def bus(tmp_path: Path) -> Path:
    return tmp_path / "ttyBUS0"


@pytest.fixture
def field_bus(simulator: Start, bus: Path) -> SimProcess:
    """tc1, pb1, wb1 and the test bench on one pty bus, units 1-4."""
    return simulator([f"tc1@pty:{bus}/1", f"pb1@pty:{bus}/2", f"wb1@pty:{bus}/3", f"tb1@pty:{bus}/4"])


async def test_profiles_read_what_the_simulator_serves(field_bus: SimProcess, bus: Path) -> None:
    made = drivers(
        rtu("tc-1", bus, 1, profile="tc1"), rtu("park-1", bus, 2, profile="pb1"), rtu("bin-1", bus, 3, profile="wb1")
    )
    try:
        for driver in made:
            await driver.start()
        results = await asyncio.gather(*(driver.read() for driver in made))  # concurrently: the bus takes turns
    finally:
        for driver in made:
            await driver.close()
    for index, readings in enumerate(results):
        expected = field_bus.values(index)
        got = {
            (r.metric if r.device == made[index].device_id else f"{r.device.split('.')[-1]}/{r.metric}"): r.value
            for r in readings
        }
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), made[index].device_id
    bays = sorted(r.device for r in results[1] if r.metric == "occupied")
    assert bays == [f"park-1.bay{n}" for n in range(1, 9)]
    assert made[0].attributes == {"model": "MISTO TC-1", "firmware": "2.4.1"}
    assert all(d.counters.timeouts == d.counters.crc_errors == 0 for d in made)


async def test_a_dead_device_does_not_stall_the_others(field_bus: SimProcess, bus: Path) -> None:
    """Unit 9 is on the bus config but nobody answers for it: the others keep their poll rate."""
    from misto.edge.polling.coordinator import PollCoordinator, PolledDevice

    made = drivers(
        rtu("tc-1", bus, 1, profile="tc1"),
        rtu("park-1", bus, 2, profile="pb1"),
        rtu("bin-1", bus, 3, profile="wb1"),
        rtu("dead-1", bus, 9, profile="wb1", timeout=0.1, retries=2),
    )
    interval = 0.4
    window = 4.0
    polls: dict[str, int] = {d.device_id: 0 for d in made}

    async def sink(message: Any) -> None:
        for device in {r.device.split(".")[0] for r in message.readings}:
            polls[device] += 1

    coordinator = PollCoordinator(
        gateway_id="gw-test",
        boot="test",
        devices=[PolledDevice(d, interval) for d in made],
        sink=sink,
        clock=SystemClock(),
        backoff_max=60.0,
    )
    task = asyncio.create_task(coordinator.run())
    try:
        await asyncio.sleep(window)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    cycles = window / interval
    for device in ("tc-1", "park-1", "bin-1"):
        assert polls[device] >= 0.75 * cycles, (device, polls, coordinator.stats)
    assert polls["dead-1"] == 0
    dead = made[3]
    # first read: 3 attempts; then probes of 1 attempt each, backed off (interval, 2x, 4x...)
    assert 3 <= dead.counters.timeouts <= 3 + 5, dead.counters
    assert coordinator.health["dead-1"].failures_total >= 2
    assert all(d.counters.timeouts == 0 for d in made[:3])


async def test_crc_errors_are_counted_and_retried(simulator: Start, bus: Path) -> None:
    sim = simulator([f"wb1@pty:{bus}/3", f"tc1@pty:{bus}/1"], faults=[f"wb1@pty:{bus}/3:crc:p=0.5"])
    # p=0.5 per answer: 11 attempts (the most a device may have) make a read that fails on every one a
    # 1-in-2,048 event (with 7: 1 in 128, seen once when a loaded machine shifted the seeded draws)
    (noisy, clean) = drivers(rtu("bin-1", bus, 3, profile="wb1", retries=10), rtu("tc-1", bus, 1, profile="tc1"))
    try:
        for _ in range(6):
            readings = await noisy.read()  # retries hide the noise from the readings...
            assert {r.metric: r.value for r in readings}["fillingLevel"] == sim.values(0)["fillingLevel"]
            await clean.read()
        assert noisy.counters.crc_errors >= 1  # ...but not from the counters
        # Every CRC error of a reading request was retried. Text attributes are read with a single
        # attempt (at most once per poll, until they succeed), so their CRC errors are not retried.
        unretried = noisy.counters.crc_errors - noisy.counters.retries
        assert 0 <= unretried <= 6, noisy.counters
        assert noisy.counters.timeouts == 0
        assert clean.counters.crc_errors == 0
    finally:
        await noisy.close()
        await clean.close()


async def test_exception_responses_are_counted_by_code(simulator: Start, bus: Path) -> None:
    simulator([f"tc1@pty:{bus}/1", f"tb1@pty:{bus}/4"], faults=[f"tc1@pty:{bus}/1:exception:code=4"])
    wrong_map = {"metric": "intensity", "table": "input", "address": 500, "type": "uint16"}
    failing, misconfigured = drivers(rtu("tc-1", bus, 1, profile="tc1"), rtu("tb-1", bus, 4, registers=[wrong_map]))
    try:
        with pytest.raises(DeviceRejected) as busy:
            await failing.read()
        with pytest.raises(DeviceRejected) as illegal:
            await misconfigured.read()
    finally:
        await failing.close()
        await misconfigured.close()
    assert (busy.value.code, busy.value.retryable) == (4, True)
    assert (illegal.value.code, illegal.value.retryable) == (2, False)
    assert "exception 2 (illegal data address)" in illegal.value.reason
    assert dict(failing.counters.exceptions) == {4: 1}
    assert dict(misconfigured.counters.exceptions) == {2: 1}
    assert failing.counters.as_dict()["exception_responses"] == 1


async def test_a_failed_device_is_probed_with_one_attempt(simulator: Start, bus: Path) -> None:
    simulator([f"tc1@pty:{bus}/1"], faults=[f"tc1@pty:{bus}/1:dropout"])
    (driver,) = drivers(rtu("tc-1", bus, 1, profile="tc1", timeout=0.1, retries=2))
    try:
        with pytest.raises(DeviceTimeout) as first:
            await driver.read()
        assert driver.counters.timeouts == 3
        assert "(3 attempts)" in first.value.reason
        with pytest.raises(DeviceTimeout):
            await driver.read()
        assert driver.counters.timeouts == 4  # the probe: one attempt, no retries
    finally:
        await driver.close()


@pytest.mark.parametrize("target", ["sp-float32-abcd/temperature", "sp-float32-cdab/temperature"])
async def test_float32_writes_read_back_in_both_word_orders(simulator: Start, bus: Path, target: str) -> None:
    simulator([f"tb1@pty:{bus}/4"])
    subdevice = target.split("/", maxsplit=1)[0]
    order = "little" if subdevice.endswith("cdab") else "big"
    address = 2 if order == "little" else 0
    row = {"metric": "temperature", "subdevice": subdevice, "table": "holding", "address": address, "type": "float32"}
    (driver,) = drivers(rtu("tb-1", bus, 4, registers=[{**row, "word_order": order}]))
    try:
        words = await driver.write(target, -12.375)
        assert words == ([0xC146, 0x0000] if order == "big" else [0x0000, 0xC146])  # float32 -12.375 = C1460000
        (reading,) = await driver.read()
        assert (reading.device, reading.value) == (f"tb-1.{subdevice}", -12.375)
        raw = await driver.readout()
        assert raw[0].raw == tuple(words)
    finally:
        await driver.close()


async def test_writes_of_every_kind(simulator: Start, bus: Path) -> None:
    simulator([f"tb1@pty:{bus}/4"])
    rows = [
        {
            "metric": "temperature",
            "subdevice": "sp-int16",
            "table": "holding",
            "address": 4,
            "type": "int16",
            "scale": 0.1,
        },
        {"metric": "occupied", "subdevice": "relay0", "table": "holding", "address": 8, "type": "bit", "bit": 0},
        {"metric": "occupied", "subdevice": "relay3", "table": "holding", "address": 8, "type": "bit", "bit": 3},
        {"metric": "occupied", "subdevice": "coil1", "table": "coil", "address": 1},
        {"metric": "intensity", "table": "input", "address": 0, "type": "uint16"},
    ]
    (driver,) = drivers(rtu("tb-1", bus, 4, registers=rows))
    try:
        assert await driver.write("sp-int16/temperature", 21.44) == [214]  # rounded to the register's 0.1
        assert await driver.write("relay0/occupied", 1) == [0b1001]  # relay3 was on already: kept
        assert await driver.write("relay3/occupied", 0) == [0b0001]
        assert await driver.write("coil1/occupied", 1) == [1]
        values = {(r.device, r.metric): r.value for r in await driver.read()}
        assert values[("tb-1.sp-int16", "temperature")] == 21.4
        assert values[("tb-1.relay0", "occupied")] == 1.0
        assert values[("tb-1.relay3", "occupied")] == 0.0
        assert values[("tb-1.coil1", "occupied")] == 1.0
        with pytest.raises(DriverError, match="read-only"):
            await driver.write("intensity", 5)
        with pytest.raises(DriverError, match="outside"):
            await driver.write("sp-int16/temperature", 5000)
        with pytest.raises(DriverError, match="no register for 'nope'"):
            await driver.write("nope", 1)
    finally:
        await driver.close()


async def test_rtu_over_tcp_devices_share_the_converter(simulator: Start) -> None:
    port = free_port()
    sim = simulator([f"tc1@rtu-tcp:{LOOPBACK}:{port}/1", f"wb1@rtu-tcp:{LOOPBACK}:{port}/2"])
    common = {"driver": "modbus_rtu_tcp", "host": LOOPBACK, "port": port, "timeout": 0.5}
    a, b = drivers(
        {"id": "tc-1", "unit_id": 1, "profile": "tc1", **common},
        {"id": "bin-1", "unit_id": 2, "profile": "wb1", **common},
    )
    assert a.bus is b.bus
    try:
        first, second = await asyncio.gather(a.read(), b.read())
    finally:
        await a.close()
        await b.close()
    assert {r.metric: r.value for r in first} == pytest.approx(sim.values(0))
    assert {r.metric: r.value for r in second} == pytest.approx(sim.values(1))


async def test_a_missing_serial_port_is_named(tmp_path: Path) -> None:
    (driver,) = drivers(rtu("tc-1", tmp_path / "ttyUSB7", 1, profile="tc1"))
    try:
        with pytest.raises(DeviceConnectionError, match=r"serial port .*ttyUSB7 does not exist"):
            await driver.start()
        with pytest.raises(DeviceConnectionError):
            await driver.read()
    finally:
        await driver.close()


async def test_devices_on_one_port_with_other_line_settings_are_refused(tmp_path: Path, caplog: Any) -> None:
    port = tmp_path / "ttyUSB0"
    devices = [
        rtu("a", port, 1, profile="tc1"),
        rtu("b", port, 2, profile="tc1", serial={"port": str(port), "baudrate": 19200}),
        rtu("c", port, 1, profile="wb1"),
    ]
    with pytest.raises(ConfigError) as refused:
        settings(*devices)  # Settings runs serial_bus_problems: both problems, each at its path
    assert [str(issue) for issue in refused.value.issues] == [
        f"devices[1].serial.baudrate: 19200 differs from devices[0] ('a', baudrate 9600) on the same port {port}: "
        "every device on a bus must use the same line settings",
        "devices[2].unit_id: unit 1 is already devices[0] ('a') on the same bus",
    ]
    # The run-time guard holds even for devices configured apart (e.g. two agents' configs merged).
    loaded = [settings(device).devices[0] for device in devices[:2]]
    assert serial_bus_problems(loaded) != []
    first, second = (create_driver(d, clock=SystemClock()) for d in loaded[:2])
    with caplog.at_level(logging.INFO), pytest.raises(DriverError, match="serial line settings differ") as caught:
        await second.start()
    assert not caught.value.retryable
    await first.close()
    await second.close()
