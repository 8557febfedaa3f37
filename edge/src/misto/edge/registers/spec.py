"""What one register-mapped value is: where it lives, how it is laid out and how it is scaled."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Table(StrEnum):
    """A Modbus data table. Registers are 16-bit words; coils and discrete inputs are single bits.

    ``holding`` (read 03, write 06/16), ``input`` (read 04), ``coil`` (read 01, write 05/15),
    ``discrete_input`` (read 02).
    """

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"

    @property
    def is_bits(self) -> bool:
        """Coils and discrete inputs hold one bit per address."""
        return self in (Table.COIL, Table.DISCRETE_INPUT)

    @property
    def writable(self) -> bool:
        return self in (Table.HOLDING, Table.COIL)

    @property
    def read_function(self) -> int:
        return _READ_FUNCTIONS[self]


_READ_FUNCTIONS = {Table.COIL: 1, Table.DISCRETE_INPUT: 2, Table.HOLDING: 3, Table.INPUT: 4}


class Order(StrEnum):
    """Byte order inside a 16-bit register, or word order across the registers of one value.

    ``big``: most significant first (bytes AB, words ABCD). ``little``: least significant first.
    """

    BIG = "big"
    LITTLE = "little"


class DataType(StrEnum):
    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT64 = "uint64"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    """``count`` registers of ASCII text, two characters per register; trailing NULs and spaces are dropped."""
    BIT = "bit"
    """A coil, a discrete input, or bit ``bit`` (0 = least significant) of one register: 0 or 1."""

    @property
    def words(self) -> int:
        """Number of 16-bit registers (or bits, in a bit table) a value of this type occupies; a
        string's width is its ``count``, so it reports 0 here."""
        return _LAYOUT[self][1]

    @property
    def struct_code(self) -> str:
        return _LAYOUT[self][0]

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT32, DataType.FLOAT64)

    @property
    def is_number(self) -> bool:
        """A whole or floating-point number that is scaled (everything but strings and bits)."""
        return self not in (DataType.STRING, DataType.BIT)


_LAYOUT: dict[DataType, tuple[str, int]] = {
    DataType.UINT16: ("H", 1),
    DataType.INT16: ("h", 1),
    DataType.UINT32: ("I", 2),
    DataType.INT32: ("i", 2),
    DataType.UINT64: ("Q", 4),
    DataType.INT64: ("q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
    DataType.STRING: ("", 0),
    DataType.BIT: ("", 1),
}


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One value in a register map. Engineering value = raw * ``scale`` + ``offset``.

    ``metric`` names a reading (from the vocabulary) or, when ``attribute`` is true, a text attribute
    of the device (model, serial number: read for identification, never sent as a reading).
    ``subdevice`` makes the reading's device ``<device id>.<subdevice>`` (one bay of a parking
    controller). ``count`` is the width of a string in registers; ``bit`` the bit of a register.
    """

    metric: str
    table: Table
    address: int
    type: DataType
    unit: str
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None
    count: int = 0
    subdevice: str | None = None
    attribute: bool = False

    @property
    def words(self) -> int:
        """Registers (or bits, in a bit table) this value occupies."""
        return self.count if self.type is DataType.STRING else self.type.words

    @property
    def end(self) -> int:
        """One past the last address of this value."""
        return self.address + self.words

    @property
    def key(self) -> str:
        """Unique within a device: ``metric`` or ``subdevice/metric``."""
        return f"{self.subdevice}/{self.metric}" if self.subdevice else self.metric

    def device_id(self, device: str) -> str:
        """The id of the device a reading of this value belongs to."""
        return f"{device}.{self.subdevice}" if self.subdevice else device

    def describe(self) -> str:
        last = self.end - 1
        span = f"{self.address}" if last == self.address else f"{self.address}-{last}"
        if self.bit is not None:
            span += f" bit {self.bit}"
        return f"{self.key} ({self.table} {span})"
