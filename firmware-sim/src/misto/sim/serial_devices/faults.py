"""Faults of a serial device, decided message by message.

Two sources: faults queued by the control API (``garbage: 2`` spoils the next two messages; queued
faults apply to consecutive messages, one per message, in the order garbage, corrupt, truncate),
and random faults at a rate per message given on the command line (``--fault-rate garbage=0.05``).
``silence`` is a power loss: nothing at all is sent for a number of seconds (a random silence
lasts 5-30 s).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from misto.sim.serial_devices.wire import GARBAGE_BYTES

RANDOM_SILENCE_S = (5.0, 30.0)
MAX_QUEUED = 1000
MAX_SILENCE_S = 3600.0


class FaultKind(StrEnum):
    GARBAGE = "garbage"
    """1-8 random bytes before the message."""
    CORRUPT = "corrupt"
    """The message spoilt: SDS011 checksum off by one; NM-2 line with ':' for its first '='."""
    TRUNCATE = "truncate"
    """Only the beginning of the message (at least 2 bytes, never its end)."""
    SILENCE = "silence"
    """Nothing sent (power loss)."""


@dataclass(slots=True)
class FaultStats:
    garbage_events: int = 0
    garbage_bytes: int = 0
    corrupted: int = 0
    truncated: int = 0
    silent_messages: int = 0


class Faults:
    def __init__(self, rng: random.Random, rates: Mapping[FaultKind, float] | None = None) -> None:
        self.rng = rng
        self.rates = dict(rates or {})
        for kind, rate in self.rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate of {kind} must be in 0..1, got {rate}")
        self.stats = FaultStats()
        self._queue: deque[FaultKind] = deque()
        self._silent_until = 0.0

    def queue(self, kind: FaultKind, count: int) -> None:
        """Spoil the next ``count`` messages with ``kind`` (after those already queued)."""
        if kind is FaultKind.SILENCE:
            raise ValueError("silence is given in seconds: use silence()")
        if not 0 <= count <= MAX_QUEUED - len(self._queue):
            raise ValueError(f"at most {MAX_QUEUED} faults may be queued")
        self._queue.extend([kind] * count)

    def silence(self, seconds: float, now: float) -> None:
        """Send nothing for ``seconds`` from ``now`` (monotonic)."""
        if not 0.0 <= seconds <= MAX_SILENCE_S:
            raise ValueError(f"silence must be 0..{MAX_SILENCE_S:g} seconds")
        self._silent_until = max(self._silent_until, now + seconds)

    def pending(self) -> dict[str, float]:
        out: dict[str, float] = {
            kind.value: float(self._queue.count(kind)) for kind in FaultKind if kind in self._queue
        }
        return out

    def silent_for(self, now: float) -> float:
        return max(0.0, self._silent_until - now)

    def next(self, now: float) -> FaultKind | None:
        """The fault for the message due at ``now`` (monotonic), or ``None`` for a good message."""
        if now < self._silent_until:
            return FaultKind.SILENCE
        if self._queue:
            return self._queue.popleft()
        for kind, rate in self.rates.items():
            if rate and self.rng.random() < rate:
                if kind is FaultKind.SILENCE:
                    self._silent_until = now + self.rng.uniform(*RANDOM_SILENCE_S)
                return kind
        return None

    def garbage(self) -> bytes:
        """1-8 garbage bytes (counted)."""
        data = bytes(self.rng.choice(GARBAGE_BYTES) for _ in range(self.rng.randint(1, 8)))
        self.stats.garbage_events += 1
        self.stats.garbage_bytes += len(data)
        return data
