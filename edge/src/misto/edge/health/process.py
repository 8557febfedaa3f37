"""The agent's own resource use, from the standard library and /proc (no extra dependency on the
gateway): CPU seconds of this process and its resident memory."""

from __future__ import annotations

import os
from pathlib import Path

_STATM = Path("/proc/self/statm")


def cpu_seconds() -> float:
    """User plus system CPU time of this process (all threads) so far."""
    times = os.times()
    return times.user + times.system


def rss_bytes() -> int | None:
    """Resident set size now (Linux), or ``None`` where /proc is not available."""
    try:
        resident_pages = int(_STATM.read_text(encoding="ascii").split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
