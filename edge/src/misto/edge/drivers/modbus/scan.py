"""Finding devices on a bus: ask every unit id in a range for one register and report who
answered and how. On a serial bus an absent unit is silent; a device that exists answers with
data or with an exception (it is there, it just does not have that register); a garbled answer
means something is there but the line is noisy. Behind a Modbus TCP gateway an absent unit gets
exception 10 or 11 from the gateway itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from misto.edge.drivers.modbus.bus import silent_interval
from misto.edge.drivers.modbus.client import EXCEPTION_NAMES, Endpoint, FailureKind, ModbusClient, RequestFailed
from misto.edge.drivers.modbus.operations import Read

GATEWAY_CODES = frozenset({0x0A, 0x0B})


class Answer(StrEnum):
    DATA = "data"
    EXCEPTION = "exception"
    GARBLED = "garbled"
    GATEWAY = "gateway"
    """A Modbus TCP gateway answered for an absent unit (exception 10 or 11)."""
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class Probe:
    """How unit ``unit`` answered: ``values`` read, or the exception ``code``; ``latency_s`` of the answer."""

    unit: int
    answer: Answer
    values: tuple[int, ...] = ()
    code: int | None = None
    latency_s: float | None = None

    @property
    def present(self) -> bool:
        """Whether a device answers at this unit id (data, an exception of its own, or a garbled frame)."""
        return self.answer in (Answer.DATA, Answer.EXCEPTION, Answer.GARBLED)

    def describe(self, probe: Read) -> str:
        match self.answer:
            case Answer.DATA:
                shown = " ".join(f"0x{v:04X}" if not probe.table.is_bits else str(v) for v in self.values)
                return f"answered: {probe.table} {probe.address} = {shown}"
            case Answer.EXCEPTION:
                name = EXCEPTION_NAMES.get(self.code or 0, "unknown")
                return f"answered: exception {self.code} ({name}); the device is there"
            case Answer.GARBLED:
                return "garbled answer (CRC error): something is there; check wiring, termination, baud rate, parity"
            case Answer.GATEWAY:
                return f"no device (the gateway answered exception {self.code})"
            case _:
                return "no answer"


def parse_units(text: str) -> list[int]:
    """``"1-247"``, ``"3"``, ``"1,2,10-20"`` as a sorted list of unit ids 1..247; :class:`ValueError` otherwise."""
    units: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, sep, last = part.partition("-")
        try:
            low, high = int(first), int(last) if sep else int(first)
        except ValueError:
            raise ValueError(f"{part!r} is not a unit id or a range such as 1-247") from None
        if not 1 <= low <= high <= 247:
            raise ValueError(f"{part!r}: unit ids are 1..247, low to high")
        units.update(range(low, high + 1))
    return sorted(units)


async def scan(
    endpoint: Endpoint,
    units: Sequence[int],
    *,
    probe: Read,
    per_unit_s: float,
    on_probe: Callable[[Probe], None] | None = None,
) -> list[Probe]:
    """Probe every unit of ``units`` on ``endpoint`` with ``probe``, one at a time. Raises
    :class:`RequestFailed` (connection) if the bus cannot be opened."""
    client = ModbusClient(endpoint, name="misto-scan")
    gap = silent_interval(endpoint)
    results: list[Probe] = []
    await client.connect(within=max(per_unit_s, 3.0))
    try:
        for unit in units:
            result = await _probe(client, unit, probe, per_unit_s)
            results.append(result)
            if on_probe is not None:
                on_probe(result)
            await asyncio.sleep(gap)
    finally:
        client.close()
    return results


async def _probe(client: ModbusClient, unit: int, probe: Read, per_unit_s: float) -> Probe:
    if not client.connected:
        await client.connect(within=max(per_unit_s, 3.0))
    started = time.monotonic()
    try:
        values = await client.execute(probe, unit=unit, within=per_unit_s)
    except RequestFailed as failed:
        latency = time.monotonic() - started
        match failed.kind:
            case FailureKind.EXCEPTION if failed.code in GATEWAY_CODES:
                return Probe(unit, Answer.GATEWAY, code=failed.code, latency_s=latency)
            case FailureKind.EXCEPTION:
                return Probe(unit, Answer.EXCEPTION, code=failed.code, latency_s=latency)
            case FailureKind.CRC | FailureKind.PROTOCOL:
                return Probe(unit, Answer.GARBLED, latency_s=latency)
            case FailureKind.CONNECTION:
                raise
            case _:
                return Probe(unit, Answer.SILENT)
    return Probe(unit, Answer.DATA, values=tuple(values), latency_s=time.monotonic() - started)
