"""Modbus RTU on a pseudo-terminal bus and over TCP, writes, and every injectable fault, read by
pymodbus's async clients (an implementation independent of the simulator's)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerType

from misto.sim import DeviceSpec, Fault, FaultKind, Simulator, SpecTransport, parse_fault
from misto.sim.errors import SpecError
from misto.sim.modbus.framing import RtuRequestReader, crc16, rtu_frame
from misto.sim.signals import KYIV

HOST = "127.0.0.1"
START = datetime(2025, 6, 4, 13, 0, tzinfo=KYIV)
Client = AsyncModbusSerialClient | AsyncModbusTcpClient


def bus_specs(path: Path) -> list[DeviceSpec]:
    pty = SpecTransport.PTY
    return [
        DeviceSpec("tc1", "", 0, 1, pty, str(path)),
        DeviceSpec("pb1", "", 0, 2, pty, str(path)),
        DeviceSpec("wb1", "", 0, 3, pty, str(path)),
        DeviceSpec("tb1", "", 0, 4, pty, str(path)),
    ]


@pytest.fixture
async def serial_client() -> AsyncIterator[Callable[[Path], asyncio.Future[AsyncModbusSerialClient]]]:
    clients: list[AsyncModbusSerialClient] = []

    async def connect(path: Path) -> AsyncModbusSerialClient:
        client = AsyncModbusSerialClient(str(path), baudrate=9600, timeout=0.3, retries=0, reconnect_delay=0)
        assert await client.connect(), f"cannot open {path}"
        clients.append(client)
        return client

    yield connect  # type: ignore[misc]
    for client in clients:
        client.close()


async def no_answer(request: asyncio.Future[object] | object) -> bool:
    try:
        response = await request  # type: ignore[misc]
    except ModbusIOException:
        return True
    raise AssertionError(f"expected no answer, got {response}")


async def test_several_units_answer_on_one_pty_bus(tmp_path: Path, serial_client: object) -> None:
    path = tmp_path / "bus"
    async with Simulator(bus_specs(path), seed=1, freeze=True, clock=lambda: START) as sim:
        assert path.is_symlink()
        assert sim.devices[0].serving_line() == f'serving tc1 "Misto TC-1 traffic counter" on pty:{path} unit 1'
        client = await serial_client(path)  # type: ignore[operator]
        tc1 = await client.read_input_registers(0, count=4, device_id=1)
        assert tc1.registers[0] == sim.devices[0].device.snapshot.values["intensity"]
        bays = await client.read_discrete_inputs(0, count=8, device_id=2)
        values = sim.devices[1].device.snapshot.values
        assert [int(b) for b in bays.bits[:8]] == [int(values[f"bay{n}/occupied"]) for n in range(1, 9)]
        free = await client.read_input_registers(0, count=1, device_id=2)
        assert free.registers == [8 - sum(bays.bits[:8])]
        status = await client.read_input_registers(2, count=1, device_id=3)
        wb1 = sim.devices[2].device.snapshot.values
        assert status.registers == [int(wb1["tilted"]) | int(wb1["fireDetected"]) << 1]
        text = await client.read_holding_registers(256, count=8, device_id=4)
        assert b"".join(w.to_bytes(2, "big") for w in text.registers).rstrip(b"\0") == b"MISTO TB-1"
        # a unit nobody serves stays silent, as on a real bus; the others still answer after it
        assert await no_answer(client.read_input_registers(0, count=1, device_id=9))
        assert not (await client.read_input_registers(0, count=1, device_id=1)).isError()
    assert not path.exists(), "the pty link is removed on close"


async def test_rtu_over_tcp(tmp_path: Path) -> None:
    specs = [DeviceSpec("tc1", HOST, 0, 5, SpecTransport.RTU_TCP)]
    async with Simulator(specs, seed=1, freeze=True, clock=lambda: START) as sim:
        served = sim.devices[0]
        assert served.serving_line().endswith(f"on rtu-tcp:{HOST}:{served.port} unit 5")
        client = AsyncModbusTcpClient(HOST, port=served.port, framer=FramerType.RTU, timeout=0.3, retries=0)
        assert await client.connect()
        try:
            response = await client.read_input_registers(0, count=2, device_id=5)
            snapshot = served.device.snapshot
            assert snapshot is not None
            assert response.registers == [
                snapshot.values["intensity"],
                round(snapshot.values["averageVehicleSpeed"] * 10),
            ]
            assert await no_answer(client.read_input_registers(0, count=1, device_id=6))
        finally:
            client.close()


async def test_writes_are_held_and_read_back(tmp_path: Path, serial_client: object) -> None:
    path = tmp_path / "bus"
    async with Simulator(bus_specs(path), seed=1, freeze=True, clock=lambda: START) as sim:
        client = await serial_client(path)  # type: ignore[operator]
        tb1 = sim.devices[3].device
        words = AsyncModbusSerialClient.convert_to_registers(-7.75, AsyncModbusSerialClient.DATATYPE.FLOAT32)
        assert not (await client.write_registers(0, words, device_id=4)).isError()
        assert not (await client.write_registers(2, words[::-1], device_id=4)).isError()  # CDAB set point
        assert not (await client.write_register(8, 0b1001, device_id=4)).isError()  # relay0 and relay3 on
        assert not (await client.write_coils(0, [False, True], device_id=4)).isError()
        assert not (await client.write_coil(3, True, device_id=4)).isError()
        values = tb1.snapshot.values if tb1.snapshot else {}
        assert values["sp-float32-abcd/temperature"] == values["sp-float32-cdab/temperature"] == -7.75
        assert (values["relay0/occupied"], values["relay3/occupied"]) == (1.0, 1.0)
        assert [values[f"coil{n}/occupied"] for n in range(4)] == [0.0, 1.0, 1.0, 1.0]
        assert (await client.read_holding_registers(0, count=2, device_id=4)).registers == words
        sim.update()  # a written set point outlives updates
        assert sim.devices[3].device.snapshot.values["sp-float32-abcd/temperature"] == -7.75  # type: ignore[union-attr]
        for refused in (
            client.write_register(0, 1, device_id=1),  # tc1 has no holding registers
            client.write_registers(256, [0x4142], device_id=4),  # the model name is not writable
            client.write_coil(0, True, device_id=2),  # discrete inputs are not coils
        ):
            response = await refused
            assert response.isError(), response
            assert response.exception_code == 2, response
        nan = AsyncModbusSerialClient.convert_to_registers(math.nan, AsyncModbusSerialClient.DATATYPE.FLOAT32)
        response = await client.write_registers(0, nan, device_id=4)
        assert response.isError()
        assert response.exception_code == 3  # a set point must be a number


async def test_faults_on_the_bus(tmp_path: Path, serial_client: object) -> None:
    path = tmp_path / "bus"
    async with Simulator(bus_specs(path), seed=1, freeze=True, clock=lambda: START) as sim:
        client = await serial_client(path)  # type: ignore[operator]
        sim.faults(0).add(Fault(kind=FaultKind.DROPOUT))
        assert await no_answer(client.read_input_registers(0, count=1, device_id=1))
        assert not (await client.read_input_registers(0, count=1, device_id=3)).isError()  # a neighbour answers
        sim.faults(0).clear()
        sim.faults(2).add(Fault(kind=FaultKind.EXCEPTION, code=6))
        response = await client.read_input_registers(0, count=1, device_id=3)
        assert response.isError()
        assert response.exception_code == 6
        sim.faults(2).clear()
        sim.faults(1).add(Fault(kind=FaultKind.CRC))
        assert await no_answer(client.read_input_registers(0, count=1, device_id=2))  # pymodbus drops the frame
        sim.faults(1).clear()
        sim.faults(1).add(Fault(kind=FaultKind.GARBAGE, size=3))
        free = sim.devices[1].device.snapshot.values["availableSpotNumber"]  # type: ignore[union-attr]
        for _ in range(4):  # the master hunts for the frame after the noise, or loses it: never a wrong value
            try:
                response = await client.read_input_registers(0, count=1, device_id=2)
            except ModbusIOException:
                continue
            assert response.registers == [free]
        sim.faults(1).clear()
        sim.faults(3).add(Fault(kind=FaultKind.SLOW, delay=0.15))
        started = time.monotonic()
        assert not (await client.read_input_registers(0, count=1, device_id=4)).isError()
        assert time.monotonic() - started >= 0.15
        sim.faults(3).clear()
        sim.faults(3).add(Fault(kind=FaultKind.POWER_LOSS, after=0.0, duration=0.3))
        assert await no_answer(client.read_input_registers(0, count=1, device_id=4))
        await asyncio.sleep(0.35)  # power is back after its window
        assert not (await client.read_input_registers(0, count=1, device_id=4)).isError()
        counts = {i: dict(sim.faults(i).counts) for i in range(4)}
        assert counts[0]["silent"] == 1
        assert counts[1]["crc"] == 1
        assert counts[1]["garbage"] == 4
        assert counts[2]["exception"] == 1
        assert counts[3]["slow"] == 1
        assert counts[3]["silent"] == 1


async def test_stuck_values_stop_changing() -> None:
    clock_now = [START]
    specs = [DeviceSpec("aq1", HOST, 0), DeviceSpec("nm1", HOST, 0)]
    async with Simulator(specs, seed=1, update_interval=10, clock=lambda: clock_now[0]) as sim:
        sim.faults(0).add(Fault(kind=FaultKind.STUCK))
        before = [d.device.snapshot for d in sim.devices]
        clock_now[0] = START.replace(hour=20)
        sim.update()
        after = [d.device.snapshot for d in sim.devices]
        assert after[0] is before[0]
        assert after[1] is not before[1]


def test_a_probabilistic_dropout_drops_about_its_share() -> None:
    import random

    from misto.sim.faults import FaultState

    state = FaultState(rng=random.Random(3))
    state.add(Fault(kind=FaultKind.DROPOUT, p=0.3))
    silent = sum(state.decide().silent for _ in range(2000))
    assert 450 < silent < 750
    assert state.counts["requests"] == 2000


def test_fault_windows() -> None:
    fault = Fault(kind=FaultKind.POWER_LOSS, after=10, duration=5, every=60)
    assert [fault.active(t) for t in (0, 9.9, 10, 14.9, 15, 69.9, 70, 75)] == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("text", "target", "fault"),
    [
        ("tc1@pty:/tmp/bus/3:dropout", "tc1@pty:/tmp/bus/3", Fault(kind=FaultKind.DROPOUT)),
        ("aq1@127.0.0.1:5020:slow:delay=1.5,p=0.5", "aq1@127.0.0.1:5020", Fault(kind=FaultKind.SLOW, delay=1.5, p=0.5)),
        ("wb1@pty:/tmp/b:exception:code=11", "wb1@pty:/tmp/b", Fault(kind=FaultKind.EXCEPTION, code=11)),
        (
            "pb1@pty:/tmp/b/2:power-loss:after=10,for=5,every=60",
            "pb1@pty:/tmp/b/2",
            Fault(kind=FaultKind.POWER_LOSS, after=10, duration=5, every=60),
        ),
    ],
)
def test_fault_specs(text: str, target: str, fault: Fault) -> None:
    spec = parse_fault(text)
    assert (spec.target, spec.fault) == (target, fault)
    assert parse_fault(f"{target}:{spec.fault}") == spec


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tc1@pty:/tmp/bus", "expected TARGET:KIND"),
        ("tc1@pty:/tmp/bus:dropout:p=2", "p must be within 0..1"),
        ("tc1@pty:/tmp/bus:exception:code=1.5", "code must be a whole number"),
        ("tc1@pty:/tmp/bus:stuck:p=0.5", "stuck takes after=, for=, every=; not 'p=0.5'"),
        ("tc1@pty:/tmp/bus:power-loss:for=10,every=5", "every >= for"),
    ],
)
def test_bad_fault_specs(text: str, reason: str) -> None:
    with pytest.raises(SpecError, match=reason):
        parse_fault(text)


def test_rtu_request_reader_splits_frames_and_checks_crc() -> None:
    read = rtu_frame(3, bytes([4, 0, 0, 0, 2]))
    write = rtu_frame(4, bytes([16, 0, 0, 0, 2, 4, 0x41, 0xC8, 0, 0]))
    bad = bytearray(rtu_frame(5, bytes([3, 0, 1, 0, 1])))
    bad[-1] ^= 0xFF
    reader = RtuRequestReader()
    frames = reader.feed(read + write[:5])
    assert [(f.unit, f.crc_ok) for f in frames] == [(3, True)]
    frames = reader.feed(write[5:] + bytes(bad))
    assert [(f.unit, f.pdu[0], f.crc_ok) for f in frames] == [(4, 16, True), (5, 3, False)]
    assert crc16(b"\x01\x04\x00\x00\x00\x01") == 0xCA31  # a known Modbus frame: 01 04 00 00 00 01 31 CA
