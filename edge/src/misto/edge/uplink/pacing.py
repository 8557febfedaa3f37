"""A token bucket: at most ``rate`` messages per second on average, bursts of at most ``burst``.
The uplink paces the messages it replays after a reconnect with it, so a gateway coming back
from a long outage does not flood the broker (and every gateway of a city coming back at once
after a broker outage does not overwhelm it)."""

from __future__ import annotations


class TokenBucket:
    def __init__(self, *, rate: float, burst: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def take(self, now: float) -> float:
        """Take one token at monotonic time ``now``: 0 if there was one, else the seconds until there is."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate
