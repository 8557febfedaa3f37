"""Per-device availability: a device that fails is unavailable and is not polled again until its
backoff has passed (capped exponential, starting at its poll interval). Permanent errors (the
device refuses the request itself) wait the maximum at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from misto.edge.backoff import Backoff
from misto.edge.errors import DriverError


class DeviceState(StrEnum):
    STARTING = "starting"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


@dataclass
class DeviceHealth:
    device_id: str
    interval: float
    backoff_max: float
    state: DeviceState = DeviceState.STARTING
    reads_total: int = 0
    failures_total: int = 0
    readings_total: int = 0
    last_error: DriverError | None = None
    retry_at: float = 0.0
    _backoff: Backoff = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._backoff = Backoff(initial=self.interval, maximum=max(self.interval, self.backoff_max))

    @property
    def consecutive_failures(self) -> int:
        return self._backoff.attempts

    def due(self, now: float) -> bool:
        """Whether the device should be read in a cycle starting at ``now``."""
        return now >= self.retry_at

    def succeeded(self, readings: int) -> bool:
        """Record a good read; ``True`` if the device has just come back."""
        recovered = self.state is DeviceState.UNAVAILABLE
        self.state = DeviceState.AVAILABLE
        self.reads_total += 1
        self.readings_total += readings
        self.last_error = None
        self.retry_at = 0.0
        self._backoff.reset()
        return recovered

    def failed(self, error: DriverError, now: float) -> tuple[bool, float]:
        """Record a failure; returns (``True`` if the device has just become unavailable, seconds to wait)."""
        became_unavailable = self.state is not DeviceState.UNAVAILABLE
        self.state = DeviceState.UNAVAILABLE
        self.reads_total += 1
        self.failures_total += 1
        self.last_error = error
        if error.retryable:
            wait = self._backoff.next_delay()
        else:
            self._backoff.attempts += 1
            wait = self._backoff.maximum
        # The device was due at ``now``; it is next due once ``wait`` has passed, on the poll grid.
        self.retry_at = now + wait - self.interval / 2
        return became_unavailable, wait
