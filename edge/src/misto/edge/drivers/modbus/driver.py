"""What every Modbus driver does, whatever the transport: read a register map with as few
requests as the read planner allows, decode it with the one generic decoder, and write values
back with the same encoder, byte order and word order.

A device that failed its last read is *probing*: its next read makes a single attempt per
request, with no retries, so a dead device on a shared bus costs the others one timeout per
probe (the poll coordinator decides how often it probes). Text attributes (model, serial
number) are read once, after the first good read, and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from misto.edge.clock import Clock
from misto.edge.device_config.modbus import ModbusDevice
from misto.edge.drivers.base import Driver
from misto.edge.drivers.modbus.bus import Member, ModbusBus
from misto.edge.drivers.modbus.counters import ModbusCounters
from misto.edge.drivers.modbus.operations import Read, WriteCoils, WriteRegisters
from misto.edge.drivers.values import ValueGate
from misto.edge.errors import DriverError, RegisterError
from misto.edge.registers.decoder import Decoder, compile_decoder, decode, decode_text, encode, encode_bit, encode_text
from misto.edge.registers.planner import ReadRequest, plan_reads
from misto.edge.registers.spec import DataType, RegisterSpec, Table
from misto.protocol import Reading

log = logging.getLogger("misto.edge.drivers.modbus")


@dataclass(frozen=True, slots=True)
class _Slot:
    """One value of a read request, prepared once: where it sits in the response and how it decodes."""

    metric: str
    unit: str
    gate: ValueGate
    start: int
    stop: int
    decode: Decoder


@dataclass(frozen=True, slots=True)
class ReadoutRow:
    """One row of a one-shot read (``misto-edge read``): the decoded value (a number, a text, or
    ``None`` with ``error``) and the raw registers or bits it came from."""

    device: str
    name: str
    attribute: bool
    value: float | str | None
    unit: str
    table: Table
    address: int
    raw: tuple[int, ...]
    error: str | None = None


class ModbusDriver(Driver):
    """Base of the ``modbus_*`` drivers; a subclass chooses the bus in :meth:`make_bus`."""

    kind: ClassVar[str]

    def __init__(self, device: ModbusDevice, *, clock: Clock) -> None:
        super().__init__(device, clock=clock)  # type: ignore[arg-type]  # every ModbusDevice is a DeviceSettings
        self.config = device
        self.specs: tuple[RegisterSpec, ...] = device.specs()
        numbers = [s for s in self.specs if not s.attribute]
        texts = [s for s in self.specs if s.attribute]
        self.plan: tuple[ReadRequest, ...] = tuple(
            plan_reads(numbers, max_registers=device.max_read_registers, max_gap=device.max_read_gap)
        )
        self.attribute_plan: tuple[ReadRequest, ...] = tuple(plan_reads(texts, max_registers=device.max_read_registers))
        self.counters = ModbusCounters()
        self.attributes: dict[str, str] = {}
        self.bus: ModbusBus = self.make_bus()
        self._gates: dict[str, ValueGate] = {}
        self._compiled: tuple[tuple[Read, tuple[_Slot, ...]], ...] = tuple(
            (Read(request.table, request.address, request.count), tuple(self._slot(request, s) for s in request.specs))
            for request in self.plan
        )
        self._probing = False
        self._identified = not texts

    def _slot(self, request: ReadRequest, spec: RegisterSpec) -> _Slot:
        start = spec.address - request.address
        return _Slot(spec.metric, spec.unit, self._gate(spec), start, start + spec.words, compile_decoder(spec))

    def make_bus(self) -> ModbusBus:
        raise NotImplementedError

    @property
    def attempts(self) -> int:
        """Attempts per request now: one while probing a device that failed, else 1 + retries."""
        return 1 if self._probing else self.config.retries + 1

    @property
    def worst_read_s(self) -> float:
        """How long one read may hold the bus: every request timing out on every attempt."""
        return self.config.timeout * (self.config.retries + 1) * max(len(self.plan), 1)

    @property
    def read_deadline(self) -> float:
        return self.config.timeout + self.worst_read_s + self.bus.wait_budget(self.device_id) + 1.0

    @property
    def rejected_total(self) -> int:
        """Values refused by the vocabulary gate (NaN, out of range), over all subdevices."""
        return sum(gate.rejected_total for gate in self._gates.values())

    async def start(self) -> None:
        self.bus.attach(Member(self.device_id, self.worst_read_s))
        await self.bus.open(self.device_id, self.config.timeout)

    async def close(self) -> None:
        self.bus.detach(self.device_id)

    async def _registers(self, op: Read | WriteRegisters | WriteCoils, attempts: int | None = None) -> list[int]:
        return await self.bus.execute(
            op,
            device_id=self.device_id,
            unit=self.config.unit_id,
            attempt_s=self.config.timeout,
            attempts=attempts or self.attempts,
            counters=self.counters,
        )

    async def read(self) -> list[Reading]:
        readings: list[Reading] = []
        try:
            for op, slots in self._compiled:
                values = await self._registers(op)
                ts = self.clock.now()
                for slot in slots:
                    reading = slot.gate.reading(slot.metric, slot.unit, slot.decode(values[slot.start : slot.stop]), ts)
                    if reading is not None:
                        readings.append(reading)
        except DriverError:
            self._probing = True
            raise
        self._probing = False
        if not self._identified:
            await self._identify()
        return readings

    def _gate(self, spec: RegisterSpec) -> ValueGate:
        device = spec.device_id(self.device_id)
        gate = self._gates.get(device)
        if gate is None:
            gate = self._gates[device] = ValueGate(device)
        return gate

    async def _identify(self) -> None:
        """Read the text attributes once, log them; a failure is logged and tried after the next good read."""
        try:
            for request in self.attribute_plan:
                values = await self._registers(Read(request.table, request.address, request.count), attempts=1)
                for spec in request.specs:
                    self.attributes[spec.key] = decode_text(request.registers_of(spec, values), spec)
        except DriverError as exc:
            log.info("device %s: cannot read its attributes yet: %s", self.device_id, exc.reason)
            return
        self._identified = True
        shown = ", ".join(f"{name} {text!r}" for name, text in self.attributes.items())
        log.info("device %s: %s", self.device_id, shown)

    async def readout(self) -> list[ReadoutRow]:
        """Every value of the map, each request on its own (a failed request fails only its rows):
        for a technician's one-shot read."""
        rows: list[ReadoutRow] = []
        for request in (*self.plan, *self.attribute_plan):
            try:
                values = await self._registers(Read(request.table, request.address, request.count))
            except DriverError as exc:
                rows += [self._row(spec, None, (), exc.reason) for spec in request.specs]
                continue
            for spec in request.specs:
                raw = tuple(request.registers_of(spec, values))
                value: float | str = decode_text(raw, spec) if spec.attribute else decode(raw, spec)
                rows.append(self._row(spec, value, raw))
        order = {spec.key: i for i, spec in enumerate(self.specs)}
        return sorted(rows, key=lambda r: order[f"{r.name}"] if r.name in order else len(order))

    def _row(
        self, spec: RegisterSpec, value: float | str | None, raw: Sequence[int], error: str | None = None
    ) -> ReadoutRow:
        return ReadoutRow(
            device=spec.device_id(self.device_id),
            name=spec.key,
            attribute=spec.attribute,
            value=value,
            unit=spec.unit,
            table=spec.table,
            address=spec.address,
            raw=tuple(raw),
            error=error,
        )

    def health_counters(self) -> dict[str, int]:
        """This device's request counters, for gateway health."""
        return self.counters.health_counters()

    def spec_for(self, target: str) -> RegisterSpec:
        """The row called ``target`` (``metric``, ``subdevice/metric`` or an attribute name)."""
        for spec in self.specs:
            if spec.key == target:
                return spec
        known = ", ".join(spec.key for spec in self.specs)
        raise DriverError(self.device_id, f"no register for {target!r}; this device has: {known}", retryable=False)

    async def write(self, target: str | RegisterSpec, value: float | str) -> list[int]:
        """Write ``value`` to a holding register value or coil of the map, encoded exactly as it is
        read back (same type, scale, byte and word order); the registers (or bits) written.

        One register is written with function 06, several with 16, a coil with 05. A bit field of
        a holding register is read, changed and written back. Raises :class:`DriverError`
        (permanent for a read-only table or a value the register cannot hold)."""
        spec = target if isinstance(target, RegisterSpec) else self.spec_for(target)
        if not spec.table.writable:
            raise DriverError(self.device_id, f"{spec.describe()} is read-only ({spec.table})", retryable=False)
        try:
            if spec.type is DataType.BIT and spec.table is Table.COIL:
                bit = encode_bit(float(value), spec)
                await self._registers(WriteCoils(spec.address, (bit,)))
                return [bit]
            if spec.type is DataType.BIT:
                (current,) = await self._registers(Read(Table.HOLDING, spec.address, 1))
                words = [encode_bit(float(value), spec, current)]
            elif spec.type is DataType.STRING:
                words = encode_text(str(value), spec)
            else:
                words = encode(float(value), spec)
        except (RegisterError, ValueError) as exc:
            raise DriverError(
                self.device_id, f"cannot write {value!r} to {spec.describe()}: {exc}", retryable=False
            ) from None
        await self._registers(WriteRegisters(spec.address, tuple(words)))
        log.info("device %s: wrote %r to %s (%s)", self.device_id, value, spec.describe(), _hex(words))
        return words


def _hex(words: Sequence[int]) -> str:
    return " ".join(f"{w:04X}" for w in words)
