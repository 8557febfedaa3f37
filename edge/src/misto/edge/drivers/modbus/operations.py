"""What one Modbus request asks for, independent of the library that sends it."""

from __future__ import annotations

from dataclasses import dataclass

from misto.edge.registers.spec import Table


@dataclass(frozen=True, slots=True)
class Read:
    """Read ``count`` registers (or bits) of ``table`` from ``address``."""

    table: Table
    address: int
    count: int

    def describe(self) -> str:
        what = "bits" if self.table.is_bits else "registers"
        return f"read of {self.table} {what} {self.address}..{self.address + self.count - 1}"


@dataclass(frozen=True, slots=True)
class WriteRegisters:
    """Write holding registers from ``address``: function 06 for one, 16 for several."""

    address: int
    words: tuple[int, ...]

    def describe(self) -> str:
        return f"write of holding registers {self.address}..{self.address + len(self.words) - 1}"


@dataclass(frozen=True, slots=True)
class WriteCoils:
    """Write coils from ``address``: function 05 for one, 15 for several."""

    address: int
    bits: tuple[int, ...]

    def describe(self) -> str:
        return f"write of coils {self.address}..{self.address + len(self.bits) - 1}"


Operation = Read | WriteRegisters | WriteCoils
