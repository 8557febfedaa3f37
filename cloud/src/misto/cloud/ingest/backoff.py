"""Capped exponential backoff with jitter, shared by broker reconnects and store retries."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1 for the first retry).

    ``base_s * 2 ** (attempt - 1)``, capped at ``cap_s``, then "equal jitter": a random value in
    ``[delay / 2, delay]`` so that many clients that lost the same broker do not return in step.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    delay = min(cap_s, base_s * 2.0 ** min(attempt - 1, 62))
    # Not for security: jitter only spreads reconnects in time.
    jitter = rng.uniform(0, delay / 2) if rng is not None else random.uniform(0, delay / 2)  # noqa: S311
    return delay / 2 + jitter
