from __future__ import annotations

import random

import pytest

from misto.cloud.ingest.backoff import backoff_delay


def test_doubles_then_caps_with_jitter_in_the_upper_half() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (10_000, 30.0)]:
        delays = [backoff_delay(attempt, base_s=0.5, cap_s=30.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 4  # spread out, not in step


def test_attempt_starts_at_one() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff_delay(0, base_s=1, cap_s=2)
