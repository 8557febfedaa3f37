"""Line-oriented ASCII meters: split a byte stream into lines and read values out of each line
with a regular expression whose named groups are the values.

A line ends with CR, LF or CR LF; empty lines are ignored. The whole line (without its ending)
must match the pattern (``re.fullmatch``), so a line that is cut, merged with another or
corrupted does not half-match. Like the SDS011 parser this is pure code that never fails on its
input; every line that yields no values is counted once, as one of:

- ``too_long``: more than ``max_length`` bytes without a line ending (discarded up to the next one);
- ``truncated``: a line half received when the line went quiet for ``gap`` seconds;
- ``undecodable``: bytes that are not printable ASCII;
- ``malformed``: the pattern does not match;
- ``bad_numbers``: a group matched something that is not a finite number.

A group that did not take part in the match (an optional group) gives no value for its metric.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from misto.edge.device_config.serial import LineField

LINE_GAP = 0.5
"""Seconds of silence after which a half-received line is given up."""
_ENDINGS = re.compile(rb"[\r\n]")


@dataclass(slots=True)
class LineCounters:
    lines: int = 0
    too_long: int = 0
    truncated: int = 0
    undecodable: int = 0
    malformed: int = 0
    bad_numbers: int = 0

    def errors(self) -> int:
        return self.too_long + self.truncated + self.undecodable + self.malformed + self.bad_numbers

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class LineParser:
    """Bytes in, one ``{metric: value}`` per good line out."""

    def __init__(self, *, pattern: str, fields: Sequence[LineField], max_length: int, gap: float = LINE_GAP) -> None:
        self.pattern = re.compile(pattern)
        self.fields = tuple(fields)
        self.max_length = max_length
        self.gap = gap
        self.counters = LineCounters()
        self._pending = bytearray()
        self._skipping = False  # inside an over-long line: drop bytes until its end
        self._last_at: float | None = None

    def reset(self) -> None:
        """Forget a half-received line (the port was reopened); counters are kept."""
        self._pending.clear()
        self._skipping = False
        self._last_at = None

    def feed(self, data: bytes, at: float) -> list[dict[str, float]]:
        """The values of every line completed by ``data``, which arrived at monotonic time ``at``."""
        if (self._pending or self._skipping) and self._last_at is not None and at - self._last_at > self.gap:
            if self._pending and not self._skipping:
                self.counters.truncated += 1
            self._pending.clear()
            self._skipping = False
        self._last_at = at
        results: list[dict[str, float]] = []
        pieces = _ENDINGS.split(data)
        for n, piece in enumerate(pieces):
            last = n == len(pieces) - 1
            self._add(piece)
            if last:
                break  # no line ending after this piece (yet)
            if self._skipping:
                self._skipping = False
            elif self._pending:
                values = self.parse(bytes(self._pending))
                if values is not None:
                    results.append(values)
            self._pending.clear()
        return results

    def _add(self, piece: bytes) -> None:
        if self._skipping or not piece:
            return
        if len(self._pending) + len(piece) > self.max_length:
            self.counters.too_long += 1
            self._pending.clear()
            self._skipping = True
            return
        self._pending += piece

    def parse(self, line: bytes) -> dict[str, float] | None:
        """The values of one line (without its ending), or ``None`` (counted) if it has none."""
        if not line.isascii() or not line.decode("ascii").isprintable():
            self.counters.undecodable += 1
            return None
        match = self.pattern.fullmatch(line.decode("ascii"))
        if match is None:
            self.counters.malformed += 1
            return None
        values: dict[str, float] = {}
        for field in self.fields:
            text = match.group(field.group)
            if text is None:
                continue
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                self.counters.bad_numbers += 1
                return None
            values[field.metric] = number * field.scale + field.offset  # exact for scale 1, offset 0
        self.counters.lines += 1
        return values
