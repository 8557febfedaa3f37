"""Is the gateway's clock right? Every reading is stamped with it. Two checks: plausible (a gateway
without a real-time clock boots in 1970 until NTP answers) and synchronised (systemd-timesyncd or
chrony, as ``timedatectl`` reports it)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime

from misto.edge.doctor.result import Check, Outcome

EARLIEST = datetime(2025, 1, 1, tzinfo=UTC)
Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)  # noqa: S603 - fixed argv


def check_clock(now: datetime, *, run: Runner = _run, which: Callable[[str], str | None] = shutil.which) -> list[Check]:
    checks = []
    if now < EARLIEST:
        checks.append(Check("clock", Outcome.FAIL, f"reads {now:%Y-%m-%d %H:%M} UTC: not set (no RTC, no NTP yet?)"))
    else:
        checks.append(Check("clock", Outcome.OK, f"reads {now:%Y-%m-%d %H:%M:%S} UTC"))
    checks.append(_synchronised(run, which))
    return checks


def _synchronised(run: Runner, which: Callable[[str], str | None]) -> Check:
    timedatectl = which("timedatectl")
    if timedatectl is None:
        return Check("clock sync", Outcome.WARN, "cannot tell: timedatectl is not installed")
    try:
        result = run([timedatectl, "show", "--property=NTPSynchronized", "--value"])
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("clock sync", Outcome.WARN, f"cannot tell: timedatectl failed ({exc})")
    answer = result.stdout.strip()
    if result.returncode != 0 or answer not in ("yes", "no"):
        why = (result.stderr.strip().splitlines() or [answer or f"exit {result.returncode}"])[0]
        return Check("clock sync", Outcome.WARN, f"cannot tell: timedatectl: {why}")
    if answer == "no":
        return Check("clock sync", Outcome.FAIL, "not synchronised with NTP (timedatectl: NTPSynchronized=no)")
    return Check("clock sync", Outcome.OK, "synchronised with NTP")
