"""The data model of a simulated device: a register map whose rows say where each metric
lives, how it is encoded, and which signal it carries.

Register conventions (shared with the edge agent's device profiles): each register holds
16 bits, most significant byte first; for multi-register values word order ``big`` puts the
high word at the lower address (ABCD) and ``little`` the low word first (CDAB); the value on
the wire is ``round(engineering / scale)`` for integer types and ``engineering / scale`` as
an IEEE 754 number for floating-point types.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from misto.protocol.vocabulary import METRICS
from misto.sim.errors import ModelError
from misto.sim.signals import Signal

MAX_ADDRESS = 0xFFFF
FLOAT32_MAX = 3.4028234663852886e38


class RegisterTable(StrEnum):
    """Which Modbus table a register is in: input registers (function 04, read-only by
    protocol) or holding registers (function 03)."""

    INPUT = "input"
    HOLDING = "holding"


class WordOrder(StrEnum):
    BIG = "big"
    LITTLE = "little"


class ValueKind(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """How a register type is laid out: its width in 16-bit words and the range of raw values
    it can hold. A new type (int64, uint64, float64) is one more :class:`RegisterType` member,
    one row here and one row in the Modbus adapter's type table; a string type would also add
    a ``words`` field to :class:`SimRegister` since its width is not fixed."""

    words: int
    kind: ValueKind
    minimum: float
    maximum: float


class RegisterType(StrEnum):
    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    FLOAT32 = "float32"

    @property
    def info(self) -> TypeInfo:
        return _TYPES[self]

    @property
    def words(self) -> int:
        return _TYPES[self].words


_TYPES: dict[RegisterType, TypeInfo] = {
    RegisterType.UINT16: TypeInfo(1, ValueKind.INTEGER, 0, 0xFFFF),
    RegisterType.INT16: TypeInfo(1, ValueKind.INTEGER, -0x8000, 0x7FFF),
    RegisterType.UINT32: TypeInfo(2, ValueKind.INTEGER, 0, 0xFFFF_FFFF),
    RegisterType.INT32: TypeInfo(2, ValueKind.INTEGER, -0x8000_0000, 0x7FFF_FFFF),
    RegisterType.FLOAT32: TypeInfo(2, ValueKind.FLOAT, -FLOAT32_MAX, FLOAT32_MAX),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SimRegister:
    """One row of a register map: ``metric`` (from the protocol vocabulary, in ``unit``) at
    ``address`` of ``table``, ``type.words`` registers wide, carrying ``signal``."""

    metric: str
    unit: str
    table: RegisterTable
    address: int
    type: RegisterType
    scale: float = 1.0
    word_order: WordOrder = WordOrder.BIG
    signal: Signal

    @property
    def words(self) -> int:
        return self.type.words

    @property
    def last_address(self) -> int:
        return self.address + self.words - 1

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.words)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceModel:
    """A simulated device type: its register map, declared as data. Constructing one checks
    it and raises :class:`ModelError` listing every problem."""

    id: str
    title: str
    registers: tuple[SimRegister, ...]

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ModelError(self.id, problems)

    def register(self, metric: str) -> SimRegister:
        for reg in self.registers:
            if reg.metric == metric:
                return reg
        raise KeyError(f"{self.id} has no register for metric {metric!r}")

    @property
    def tables(self) -> tuple[RegisterTable, ...]:
        """The tables this device uses, in declaration order."""
        return tuple(dict.fromkeys(reg.table for reg in self.registers))

    def evaluation_order(self) -> tuple[SimRegister, ...]:
        """Registers ordered so that every signal comes after the metrics it is computed from."""
        by_metric = {reg.metric: reg for reg in self.registers}
        ordered: dict[str, SimRegister] = {}

        def visit(reg: SimRegister) -> None:
            if reg.metric in ordered:
                return
            for name in reg.signal.inputs:
                visit(by_metric[name])
            ordered[reg.metric] = reg

        for reg in self.registers:
            visit(reg)
        return tuple(ordered.values())


def _problems(model: DeviceModel) -> Iterator[str]:
    if not model.registers:
        yield f"{model.id}.registers: a device needs at least one register"
    seen_metrics: dict[str, int] = {}
    for i, reg in enumerate(model.registers):
        where = f"{model.id}.registers[{i}]"
        yield from _register_problems(reg, where)
        if reg.metric in seen_metrics:
            yield f"{where}.metric: {reg.metric!r} is already at registers[{seen_metrics[reg.metric]}]"
        seen_metrics.setdefault(reg.metric, i)
    yield from _overlaps(model)
    yield from _input_problems(model)


def _register_problems(reg: SimRegister, where: str) -> Iterator[str]:
    metric = METRICS.get(reg.metric)
    if metric is None:
        yield f"{where}.metric: {reg.metric!r} is not in the protocol vocabulary"
    elif reg.unit != metric.unit:
        yield f"{where}.unit: metric {reg.metric!r} is measured in {metric.unit!r}, not {reg.unit!r}"
    if not 0 <= reg.address <= MAX_ADDRESS - reg.words + 1:
        yield f"{where}.address: {reg.address} does not leave room for {reg.words} register(s) in 0..{MAX_ADDRESS}"
    if not reg.scale > 0:
        yield f"{where}.scale: must be positive, got {reg.scale}"
    floor, ceiling = reg.signal.floor, reg.signal.ceiling
    if floor > ceiling:
        yield f"{where}.signal: floor {floor} is above ceiling {ceiling}"
    elif reg.scale > 0:
        info = reg.type.info
        low, high = info.minimum * reg.scale, info.maximum * reg.scale
        if floor < low or ceiling > high:
            yield (
                f"{where}.signal: range [{floor:g}, {ceiling:g}] does not fit {reg.type} "
                f"with scale {reg.scale:g} ([{low:g}, {high:g}])"
            )


def _overlaps(model: DeviceModel) -> Iterator[str]:
    for table in RegisterTable:
        owner: dict[int, int] = {}
        for i, reg in enumerate(model.registers):
            if reg.table is not table:
                continue
            for address in reg.addresses:
                if address in owner:
                    yield (
                        f"{model.id}.registers[{i}].address: {table} register {address} "
                        f"is already used by registers[{owner[address]}]"
                    )
                    break
                owner[address] = i


def _input_problems(model: DeviceModel) -> Iterator[str]:
    by_metric = {reg.metric: reg for reg in model.registers}
    for i, reg in enumerate(model.registers):
        for name in reg.signal.inputs:
            if name not in by_metric:
                yield f"{model.id}.registers[{i}].signal: computed from {name!r}, which this device does not have"
    # Cycles: follow inputs from each register; a path that returns to its start is a cycle.
    for i, reg in enumerate(model.registers):
        stack: list[tuple[str, tuple[str, ...]]] = [(name, (reg.metric,)) for name in reg.signal.inputs]
        while stack:
            name, path = stack.pop()
            if name == reg.metric:
                yield f"{model.id}.registers[{i}].signal: inputs form a cycle {' -> '.join((*path, name))}"
                break
            if name in path or name not in by_metric:
                continue
            stack.extend((nxt, (*path, name)) for nxt in by_metric[name].signal.inputs)
