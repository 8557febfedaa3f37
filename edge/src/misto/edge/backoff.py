"""Capped exponential backoff, optionally with jitter (so many gateways do not reconnect in step)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``initial * multiplier**n`` capped at ``maximum``. With ``jitter`` j, each delay is drawn
    uniformly from ``[d * (1 - j), d]``, so the cap is never exceeded and the delay never reaches 0."""

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(f"need 0 < initial <= maximum, got {self.initial} and {self.maximum}")
        if self.multiplier < 1 or not 0 <= self.jitter < 1:
            raise ValueError("need multiplier >= 1 and 0 <= jitter < 1")

    def peek(self) -> float:
        """The un-jittered delay the next call to :meth:`next_delay` is based on."""
        return min(self.initial * self.multiplier ** min(self.attempts, 64), self.maximum)

    def next_delay(self) -> float:
        delay = self.peek()
        self.attempts += 1
        if self.jitter:
            delay *= 1 - self.jitter * self.rng.random()
        return delay

    def reset(self) -> None:
        self.attempts = 0
