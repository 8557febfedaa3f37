"""The read planner: coalesce a device's registers into as few read requests as possible.

Per table, specs are sorted by address and merged into one request while the gap between them
is at most ``max_gap`` registers and the request stays within ``max_registers`` (125 is the
Modbus limit for function 03/04; coils and discrete inputs are read up to 2,000 bits at a time).
A gap makes the device return registers nobody asked for, which some devices refuse (exception 2),
so the default gap is 0: contiguous registers only. Bit fields of one register share it: several
specs may cover the same address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from misto.edge.registers.spec import RegisterSpec, Table

MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read of ``count`` registers from ``address`` in ``table``, covering ``specs``."""

    table: Table
    address: int
    count: int
    specs: tuple[RegisterSpec, ...]

    def registers_of(self, spec: RegisterSpec, registers: Sequence[int]) -> Sequence[int]:
        """The slice of this request's response that holds ``spec``."""
        start = spec.address - self.address
        return registers[start : start + spec.words]


def plan_reads(
    specs: Iterable[RegisterSpec], *, max_registers: int = MAX_READ_REGISTERS, max_gap: int = 0
) -> list[ReadRequest]:
    """Requests covering every spec, ordered by table then address. ``max_registers`` limits reads of
    registers; reads of coils and discrete inputs take up to :data:`MAX_READ_BITS` bits."""
    if not 1 <= max_registers <= MAX_READ_REGISTERS:
        raise ValueError(f"max_registers must be within 1..{MAX_READ_REGISTERS}, got {max_registers}")
    if max_gap < 0:
        raise ValueError(f"max_gap must not be negative, got {max_gap}")
    all_specs = tuple(specs)
    requests: list[ReadRequest] = []
    for table in Table:
        limit = MAX_READ_BITS if table.is_bits else max_registers
        ordered = sorted((s for s in all_specs if s.table is table), key=lambda s: (s.address, s.end))
        group: list[RegisterSpec] = []
        start = end = 0
        for spec in ordered:
            if spec.words > limit:
                raise ValueError(f"{spec.describe()} needs {spec.words} registers, more than {limit}")
            fits = group and spec.address - end <= max_gap and max(end, spec.end) - start <= limit
            if group and not fits:
                requests.append(ReadRequest(table, start, end - start, tuple(group)))
                group = []
            if not group:
                start, end = spec.address, spec.end
            group.append(spec)
            end = max(end, spec.end)
        if group:
            requests.append(ReadRequest(table, start, end - start, tuple(group)))
    return requests
