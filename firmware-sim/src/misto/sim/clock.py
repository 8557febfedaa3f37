"""Clocks: where the simulator gets "now" from. Signal code never reads the wall clock; the
runner asks a clock and passes the instant down, so tests and demos can drive time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Returns the current instant as an aware datetime."""


def system_clock() -> datetime:
    return datetime.now(UTC)


class ScaledClock:
    """Starts at ``start`` and runs ``speed`` times as fast as real time: ``speed=60`` plays an
    hour a minute, so a demo dashboard shows a whole day of patterns in 24 minutes.

    The first call returns ``start`` exactly (time starts running then, not at construction),
    so a frozen run with a given start and seed is reproducible however long start-up takes."""

    def __init__(self, start: datetime, *, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be an aware datetime, got naive {start.isoformat()}")
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._t0: float | None = None

    def __call__(self) -> datetime:
        now = self._monotonic()
        if self._t0 is None:
            self._t0 = now
        return self.start + timedelta(seconds=(now - self._t0) * self.speed)
