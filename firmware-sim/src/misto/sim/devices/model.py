"""The data model of a simulated device: a register map whose rows say where each metric
lives, how it is encoded, and which signal it carries.

Register conventions (shared with the edge agent's device profiles): each register holds
16 bits; ``byte_order`` ``big`` puts the most significant byte first (the default and the
Modbus convention); for multi-register values word order ``big`` puts the high word at the
lower address (ABCD) and ``little`` the low word first (CDAB); the value on the wire is
``round(engineering / scale)`` for integer types and ``engineering / scale`` as an IEEE 754
number for floating-point types. A ``bit`` row is a coil, a discrete input, or one bit of a
register (bit 0 is the least significant), holding 0 or 1. Text (model name, serial number)
is ASCII in holding registers, two characters per register, padded with NULs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from misto.sim.errors import ModelError
from misto.sim.signals import Signal

MAX_ADDRESS = 0xFFFF
FLOAT32_MAX = 3.4028234663852886e38
FLOAT64_MAX = 1.7976931348623157e308


class RegisterTable(StrEnum):
    """Which Modbus table a row is in: input registers (function 04, read-only), holding
    registers (03, written with 06/16), coils (01, written with 05/15) or discrete inputs (02)."""

    INPUT = "input"
    HOLDING = "holding"
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"

    @property
    def is_bits(self) -> bool:
        return self in (RegisterTable.COIL, RegisterTable.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        return self in (RegisterTable.HOLDING, RegisterTable.COIL)

    @property
    def function_code(self) -> int:
        return {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}[self.value]


class WordOrder(StrEnum):
    """Order of the words of a value, or of the two bytes in a register (``byte_order``)."""

    BIG = "big"
    LITTLE = "little"


ByteOrder = WordOrder


class Transport(StrEnum):
    """How a real device of this kind is wired. The simulator serves any model over any transport."""

    TCP = "Modbus TCP"
    RTU = "Modbus RTU (RS-485)"


class ValueKind(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """How a register type is laid out: its width in 16-bit words (or bits, in a bit table),
    the struct code of its bytes and the range of raw values it can hold."""

    words: int
    kind: ValueKind
    minimum: float
    maximum: float
    struct_code: str


class RegisterType(StrEnum):
    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT64 = "uint64"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BIT = "bit"

    @property
    def info(self) -> TypeInfo:
        return _TYPES[self]

    @property
    def words(self) -> int:
        return _TYPES[self].words


_TYPES: dict[RegisterType, TypeInfo] = {
    RegisterType.UINT16: TypeInfo(1, ValueKind.INTEGER, 0, 0xFFFF, "H"),
    RegisterType.INT16: TypeInfo(1, ValueKind.INTEGER, -0x8000, 0x7FFF, "h"),
    RegisterType.UINT32: TypeInfo(2, ValueKind.INTEGER, 0, 0xFFFF_FFFF, "I"),
    RegisterType.INT32: TypeInfo(2, ValueKind.INTEGER, -0x8000_0000, 0x7FFF_FFFF, "i"),
    RegisterType.UINT64: TypeInfo(4, ValueKind.INTEGER, 0, 2**64 - 1, "Q"),
    RegisterType.INT64: TypeInfo(4, ValueKind.INTEGER, -(2**63), 2**63 - 1, "q"),
    RegisterType.FLOAT32: TypeInfo(2, ValueKind.FLOAT, -FLOAT32_MAX, FLOAT32_MAX, "f"),
    RegisterType.FLOAT64: TypeInfo(4, ValueKind.FLOAT, -FLOAT64_MAX, FLOAT64_MAX, "d"),
    RegisterType.BIT: TypeInfo(1, ValueKind.INTEGER, 0, 1, ""),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SimRegister:
    """One row of a register map: ``metric`` (from the protocol vocabulary, in ``unit``) at
    ``address`` of ``table``, ``type.words`` registers wide, carrying ``signal``.

    ``subdevice`` names a part of the device with its own readings (bay 3 of a parking
    controller): the edge reports them as device ``<id>.<subdevice>``. ``writable`` rows take
    written values (a set point) and hold them instead of their signal."""

    metric: str
    unit: str
    table: RegisterTable
    address: int
    type: RegisterType
    scale: float = 1.0
    word_order: WordOrder = WordOrder.BIG
    byte_order: WordOrder = WordOrder.BIG
    bit: int | None = None
    subdevice: str | None = None
    writable: bool = False
    signal: Signal

    @property
    def key(self) -> str:
        """The row's name in snapshots and the state file: ``metric`` or ``subdevice/metric``."""
        return f"{self.subdevice}/{self.metric}" if self.subdevice else self.metric

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
class SimText:
    """A fixed text in holding registers (model name, serial number, firmware version): ASCII,
    two characters per register, most significant byte first, padded with NULs."""

    name: str
    address: int
    words: int
    text: str

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.words)

    @property
    def last_address(self) -> int:
        return self.address + self.words - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceModel:
    """A simulated device type: its register map, declared as data. Constructing one checks
    it and raises :class:`ModelError` listing every problem."""

    id: str
    title: str
    registers: tuple[SimRegister, ...]
    identity: tuple[SimText, ...] = ()
    transport: Transport = Transport.TCP

    def __post_init__(self) -> None:
        from misto.sim.devices.checks import model_problems

        problems = list(model_problems(self))
        if problems:
            raise ModelError(self.id, problems)

    def register(self, key: str) -> SimRegister:
        for reg in self.registers:
            if reg.key == key:
                return reg
        raise KeyError(f"{self.id} has no register for {key!r}")

    @property
    def tables(self) -> tuple[RegisterTable, ...]:
        """The tables this device uses, in declaration order."""
        tables = [reg.table for reg in self.registers]
        if self.identity:
            tables.append(RegisterTable.HOLDING)
        return tuple(dict.fromkeys(tables))

    def evaluation_order(self) -> tuple[SimRegister, ...]:
        """Registers ordered so that every signal comes after the metrics it is computed from
        (signals name their inputs by key: ``metric`` or ``subdevice/metric``)."""
        by_key = {reg.key: reg for reg in self.registers}
        ordered: dict[str, SimRegister] = {}

        def visit(reg: SimRegister) -> None:
            if reg.key in ordered:
                return
            for name in reg.signal.inputs:
                visit(by_key[name])
            ordered[reg.key] = reg

        for reg in self.registers:
            visit(reg)
        return tuple(ordered.values())
