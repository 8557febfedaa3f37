"""The simulator in-process, over real Modbus TCP sockets, read by pymodbus's async client."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU

from misto.sim.devices import DeviceModel, RegisterTable, RegisterType, SimRegister, WordOrder
from misto.sim.encoding import scale_decimals
from misto.sim.errors import ServeError, StateFileError
from misto.sim.signals import KYIV
from misto.sim.simulator import ServedDevice, Simulator
from misto.sim.spec import DeviceSpec
from tests.fixtures.net import free_port

HOST = "127.0.0.1"
DT = AsyncModbusTcpClient.DATATYPE
TYPES = {
    RegisterType.UINT16: DT.UINT16,
    RegisterType.INT16: DT.INT16,
    RegisterType.UINT32: DT.UINT32,
    RegisterType.INT32: DT.INT32,
    RegisterType.FLOAT32: DT.FLOAT32,
}
ILLEGAL_ADDRESS = 2
GATEWAY_TARGET_FAILED = 0x0B


class DrivenClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


Connect = Callable[[int], Awaitable[AsyncModbusTcpClient]]


async def eventually(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {within}s waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def client_for() -> AsyncIterator[Connect]:
    clients: list[AsyncModbusTcpClient] = []

    async def connect(port: int) -> AsyncModbusTcpClient:
        client = AsyncModbusTcpClient(HOST, port=port, timeout=3, retries=0)
        assert await client.connect(), f"cannot connect to {HOST}:{port}"
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


async def read(client: AsyncModbusTcpClient, table: RegisterTable, address: int, count: int, unit: int) -> ModbusPDU:
    if table is RegisterTable.INPUT:
        return await client.read_input_registers(address, count=count, device_id=unit)
    return await client.read_holding_registers(address, count=count, device_id=unit)


def decode(reg: SimRegister, words: Sequence[int]) -> float:
    order: Literal["big", "little"] = "little" if reg.word_order is WordOrder.LITTLE else "big"
    raw = AsyncModbusTcpClient.convert_from_registers(words, TYPES[reg.type], word_order=order)
    assert isinstance(raw, int | float)
    return raw * reg.scale if reg.type is RegisterType.FLOAT32 else round(raw * reg.scale, scale_decimals(reg.scale))


async def read_all(client: AsyncModbusTcpClient, model: DeviceModel, unit: int) -> dict[str, float]:
    """Read the whole map in one request per table and decode every register."""
    values: dict[str, float] = {}
    for table in model.tables:
        regs = [r for r in model.registers if r.table is table]
        first, last = regs[0].address, max(r.last_address for r in regs)
        response = await read(client, table, first, last - first + 1, unit)
        assert not response.isError(), response
        for r in regs:
            values[r.metric] = decode(r, response.registers[r.address - first : r.address - first + r.words])
    return values


def expected(served: ServedDevice) -> dict[str, float]:
    snapshot = served.device.snapshot
    assert snapshot is not None
    return snapshot.values


async def test_reads_decode_to_the_snapshot_values(client_for: Connect) -> None:
    specs = [DeviceSpec("aq1", HOST, 0), DeviceSpec("nm1", HOST, 0, unit=9)]
    async with Simulator(specs, seed=7, freeze=True) as sim:
        for served in sim.devices:
            client = await client_for(served.port)
            assert await read_all(client, served.model, served.unit) == expected(served)
            # register by register too (a client that reads each value on its own)
            for r in served.model.registers:
                response = await read(client, r.table, r.address, r.words, served.unit)
                assert decode(r, response.registers) == expected(served)[r.metric]


async def test_unmapped_addresses_wrong_tables_and_writes_are_refused(client_for: Connect) -> None:
    async with Simulator([DeviceSpec("aq1", HOST, 0), DeviceSpec("nm1", HOST, 0)], seed=1, freeze=True) as sim:
        aq1, nm1 = sim.devices
        c1 = await client_for(aq1.port)
        c2 = await client_for(nm1.port)
        for response in (
            await c1.read_input_registers(12, count=1, device_id=1),  # just past the map
            await c1.read_input_registers(10, count=3, device_id=1),  # runs off the end
            await c1.read_input_registers(1000, count=2, device_id=1),
            await c1.read_holding_registers(0, count=1, device_id=1),  # aq1 has no holding registers
            await c2.read_input_registers(0, count=1, device_id=1),  # nm1 has no input registers
            await c2.read_holding_registers(5, count=1, device_id=1),
            await c1.read_coils(0, count=1, device_id=1),
            await c2.write_register(2, 123, device_id=1),
            await c2.write_registers(0, [1, 2], device_id=1),
        ):
            assert response.isError(), response
            assert response.exception_code == ILLEGAL_ADDRESS, response
        # still serving after all that
        assert await read_all(c2, nm1.model, 1) == expected(nm1)


async def test_an_unknown_unit_gets_gateway_target_failed(client_for: Connect) -> None:
    async with Simulator([DeviceSpec("aq1", HOST, 0)], seed=1, freeze=True) as sim:
        client = await client_for(sim.devices[0].port)
        response = await client.read_input_registers(0, count=1, device_id=2)
        assert response.isError()
        assert response.exception_code == GATEWAY_TARGET_FAILED


async def test_several_units_share_one_port(client_for: Connect) -> None:
    unused_tcp_port = free_port()
    specs = [DeviceSpec("aq1", HOST, unused_tcp_port, 1), DeviceSpec("nm1", HOST, unused_tcp_port, 2)]
    async with Simulator(specs, seed=2, freeze=True) as sim:
        assert [d.port for d in sim.devices] == [unused_tcp_port, unused_tcp_port]
        client = await client_for(unused_tcp_port)
        assert await read_all(client, sim.devices[0].model, 1) == expected(sim.devices[0])
        assert await read_all(client, sim.devices[1].model, 2) == expected(sim.devices[1])


async def test_updates_follow_the_clock_and_rewrite_the_state_file(client_for: Connect, tmp_path: Path) -> None:
    clock = DrivenClock(datetime(2025, 6, 4, 3, 0, tzinfo=KYIV))
    state_file = tmp_path / "state.json"
    async with Simulator(
        [DeviceSpec("nm1", HOST, 0)], seed=3, update_interval=0.05, state_file=state_file, clock=clock
    ) as sim:
        served = sim.devices[0]
        client = await client_for(served.port)
        night = await read_all(client, served.model, 1)
        assert night == expected(served)
        assert json.loads(state_file.read_text())["updated_at"] == "2025-06-04T00:00:00.000Z"
        clock.now += timedelta(hours=10)  # 13:00 local: daytime noise

        def updated() -> bool:
            snapshot = served.device.snapshot
            return snapshot is not None and snapshot.at == clock.now

        await eventually(updated, within=5, what="an update at the new time")
        day = await read_all(client, served.model, 1)
        assert day["LAeq"] > night["LAeq"] + 10
        await eventually(
            lambda: json.loads(state_file.read_text())["updated_at"] == "2025-06-04T10:00:00.000Z",
            within=5,
            what="the state file to be rewritten",
        )
        assert sim.stats.updates >= 2
        assert sim.stats.state_file_errors == 0


async def test_freeze_holds_the_first_values(tmp_path: Path) -> None:
    clock = DrivenClock(datetime(2025, 6, 4, 3, 0, tzinfo=KYIV))
    async with Simulator([DeviceSpec("aq1", HOST, 0)], seed=3, freeze=True, update_interval=0.01, clock=clock) as sim:
        first = sim.devices[0].device.snapshot
        clock.now += timedelta(hours=5)
        await asyncio.sleep(0.2)  # twenty update intervals: long enough to see an update that should not happen
        assert sim.devices[0].device.snapshot is first
        assert sim.stats.updates == 1


async def test_state_file_matches_the_specs(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    specs = [DeviceSpec("aq1", HOST, 0), DeviceSpec("nm1", HOST, 0, unit=5)]
    async with Simulator(specs, seed=4, freeze=True, state_file=state_file) as sim:
        doc = json.loads(state_file.read_text())
        assert [(d["model"], d["host"], d["port"], d["unit"]) for d in doc["devices"]] == [
            ("aq1", HOST, sim.devices[0].port, 1),
            ("nm1", HOST, sim.devices[1].port, 5),
        ]
        assert [d["values"] for d in doc["devices"]] == [expected(s) for s in sim.devices]
        assert list(doc["devices"][0]["values"]) == [r.metric for r in sim.devices[0].model.registers]
        assert doc["updated_at"].endswith("Z")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # noqa: ASYNC240 - no temp files left behind


def can_bind(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


async def test_a_port_in_use_is_a_clear_error_and_nothing_is_left_listening() -> None:
    busy, other_port = free_port(), free_port()
    async with Simulator([DeviceSpec("aq1", HOST, busy)], seed=1, freeze=True):
        other = Simulator([DeviceSpec("nm1", HOST, other_port), DeviceSpec("aq1", HOST, busy)], seed=1, freeze=True)
        with pytest.raises(ServeError, match=rf"cannot listen on {HOST}:{busy}: .*in use") as caught:
            await other.start()
        assert caught.value.retryable
        assert other.devices == ()
        assert can_bind(other_port), "the server that did start was not closed"


async def test_an_unwritable_state_file_fails_the_start(tmp_path: Path) -> None:
    port = free_port()
    sim = Simulator([DeviceSpec("aq1", HOST, port)], seed=1, state_file=tmp_path / "missing" / "state.json")
    with pytest.raises(StateFileError, match=r"cannot write state file .*missing/state.json: No such file"):
        await sim.start()
    assert sim.devices == ()
    assert can_bind(port)


async def test_state_file_failures_while_serving_are_counted_and_recovered(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    state_file = folder / "state.json"
    async with Simulator([DeviceSpec("aq1", HOST, 0)], seed=1, update_interval=0.02, state_file=state_file) as sim:
        shutil.rmtree(folder)
        await eventually(lambda: sim.stats.state_file_errors >= 2, within=5, what="failed writes to be counted")
        folder.mkdir()
        await eventually(state_file.exists, within=5, what="the state file to be written again")
        assert sim.stats.update_errors == 0


def test_bad_arguments_are_refused_before_serving() -> None:
    with pytest.raises(ValueError, match="no device specs"):
        Simulator([])
    with pytest.raises(ValueError, match="update_interval"):
        Simulator([DeviceSpec("aq1", HOST, 0)], update_interval=0)
    with pytest.raises(ExceptionGroup) as caught:
        Simulator([DeviceSpec("zz", HOST, 0), DeviceSpec("aq1", HOST, 5020), DeviceSpec("nm1", HOST, 5020)])
    assert [str(e) for e in caught.value.exceptions] == [
        "device spec 'zz@127.0.0.1:0/1': unknown model 'zz'; known models: aq1, nm1, pb1, tb1, tc1, wb1",
        "device spec 'nm1@127.0.0.1:5020/1': unit 1 on 127.0.0.1:5020 is already aq1@127.0.0.1:5020/1",
    ]


async def test_devices_with_the_same_spec_still_differ() -> None:
    async with Simulator([DeviceSpec("aq1", HOST, 0), DeviceSpec("aq1", HOST, 0)], seed=1, freeze=True) as sim:
        first, second = (expected(d) for d in sim.devices)
        assert first != second
        assert sim.devices[0].port != sim.devices[1].port
