"""A token bucket per API key, in the API process: a key with a limit of N requests per minute
holds at most N tokens (a burst of N), refilled at N/60 per second; a request takes one. With
no token left the request is refused (429) with the seconds until the next token, and counted.

Each API process keeps its own buckets: behind K processes a key gets up to K times its limit
(documented in docs/security.md). ``clock`` is monotonic seconds, driven by tests."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

SECONDS_PER_MINUTE = 60.0


@dataclass(slots=True)
class _Bucket:
    per_minute: int
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self.refused: Counter[str] = Counter()  # refusals per bucket name

    def take(self, name: str, per_minute: int) -> int | None:
        """None if a request of ``name`` may go on; else the whole seconds to wait (at least 1)."""
        now = self._clock()
        bucket = self._buckets.get(name)
        if bucket is None or bucket.per_minute != per_minute:
            bucket = self._buckets[name] = _Bucket(per_minute, float(per_minute), now)
        rate = per_minute / SECONDS_PER_MINUTE
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        self.refused[name] += 1
        return max(1, math.ceil((1.0 - bucket.tokens) / rate))

    def forget(self, name: str) -> None:
        self._buckets.pop(name, None)

    @property
    def in_use(self) -> bool:
        """Whether any request was counted yet (a key used, or a sign-in attempted)."""
        return bool(self._buckets) or bool(self.refused)

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())
