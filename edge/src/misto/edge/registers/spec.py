"""What one register-mapped value is: where it lives, how it is laid out and how it is scaled."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Table(StrEnum):
    """Modbus register table: holding (function 03, writable) or input (function 04, read-only)."""

    HOLDING = "holding"
    INPUT = "input"


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

    @property
    def words(self) -> int:
        """Number of 16-bit registers a value of this type occupies."""
        return _LAYOUT[self][1]

    @property
    def struct_code(self) -> str:
        return _LAYOUT[self][0]

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT32, DataType.FLOAT64)


_LAYOUT: dict[DataType, tuple[str, int]] = {
    DataType.UINT16: ("H", 1),
    DataType.INT16: ("h", 1),
    DataType.UINT32: ("I", 2),
    DataType.INT32: ("i", 2),
    DataType.UINT64: ("Q", 4),
    DataType.INT64: ("q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One metric in a register map. Engineering value = raw * ``scale`` + ``offset``."""

    metric: str
    table: Table
    address: int
    type: DataType
    unit: str
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0

    @property
    def words(self) -> int:
        return self.type.words

    @property
    def end(self) -> int:
        """One past the last register address of this value."""
        return self.address + self.type.words

    def describe(self) -> str:
        last = self.end - 1
        span = f"{self.address}" if last == self.address else f"{self.address}-{last}"
        return f"{self.metric} ({self.table} {span})"
