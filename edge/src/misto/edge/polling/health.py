"""Per-device availability and counters: a device that fails is unavailable and is not polled again
until its backoff has passed (capped exponential, starting at its poll interval). Permanent errors
(the device refuses the request itself) wait the maximum at once. Each device also keeps what
gateway health and ``misto-edge status`` report: reads, failures by kind, the last read's latency,
the last error and its time, and the last value of each metric."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from misto.edge.backoff import Backoff
from misto.edge.errors import DeviceConnectionError, DeviceRejected, DeviceTimeout, DriverError
from misto.protocol import DeviceState, Reading

__all__ = ["DeviceHealth", "DeviceState", "error_kind"]


def error_kind(error: DriverError) -> str:
    """A short, stable name for the kind of a failure (``timeout``, ``connection``, ``rejected``, ...),
    used as a key of the error counters. A driver error may name its own kind (``kind`` attribute)."""
    own = getattr(error, "kind", None)
    if isinstance(own, str) and own:
        return own
    if isinstance(error, DeviceTimeout):
        return "timeout"
    if isinstance(error, DeviceConnectionError):
        return "connection"
    if isinstance(error, DeviceRejected):
        return "rejected"
    return "driver"


@dataclass
class DeviceHealth:
    device_id: str
    interval: float
    backoff_max: float
    state: DeviceState = DeviceState.STARTING
    reads_total: int = 0
    failures_total: int = 0
    readings_total: int = 0
    suppressed_total: int = 0
    last_error: DriverError | None = None
    last_error_kind: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = None
    last_latency: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    last_values: dict[tuple[str, str], Reading] = field(default_factory=dict)
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

    def succeeded(
        self, readings: list[Reading] | int, *, latency: float | None = None, at: datetime | None = None
    ) -> bool:
        """Record a good read; ``True`` if the device has just come back."""
        recovered = self.state is DeviceState.UNAVAILABLE
        self.state = DeviceState.AVAILABLE
        self.reads_total += 1
        if isinstance(readings, int):
            self.readings_total += readings
        else:
            self.readings_total += len(readings)
            for reading in readings:
                self.last_values[(reading.device, reading.metric)] = reading
        self.last_latency = latency if latency is not None else self.last_latency
        self.last_success_at = at or self.last_success_at
        self.last_error = None
        self.retry_at = 0.0
        self._backoff.reset()
        return recovered

    def failed(self, error: DriverError, now: float, *, at: datetime | None = None) -> tuple[bool, float]:
        """Record a failure; returns (``True`` if the device has just become unavailable, seconds to wait)."""
        became_unavailable = self.state is not DeviceState.UNAVAILABLE
        self.state = DeviceState.UNAVAILABLE
        self.reads_total += 1
        self.failures_total += 1
        self.last_error = error
        self.last_error_kind = kind = error_kind(error)
        self.last_error_at = at or self.last_error_at
        self.errors[kind] += 1
        if error.retryable:
            wait = self._backoff.next_delay()
        else:
            self._backoff.attempts += 1
            wait = self._backoff.maximum
        # The device was due at ``now``; it is next due once ``wait`` has passed, on the poll grid.
        self.retry_at = now + wait - self.interval / 2
        return became_unavailable, wait
