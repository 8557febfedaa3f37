"""The outcome of one ``misto-edge doctor`` check, and how a list of them is shown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


MARKS = {Outcome.OK: "✔", Outcome.WARN: "⚠", Outcome.FAIL: "✘", Outcome.SKIP: "-"}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    outcome: Outcome
    detail: str


def passed(checks: Sequence[Check]) -> bool:
    """Warnings and skipped checks do not fail the doctor; failures do."""
    return all(check.outcome is not Outcome.FAIL for check in checks)


def render_text(checks: Sequence[Check]) -> str:
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"{MARKS[c.outcome]} {c.name.ljust(width)}  {c.detail}" for c in checks]
    failures = sum(c.outcome is Outcome.FAIL for c in checks)
    warnings = sum(c.outcome is Outcome.WARN for c in checks)
    verdict = "all checks passed" if not failures else f"{failures} check(s) failed"
    if warnings:
        verdict += f", {warnings} warning(s)"
    return "\n".join([*lines, "", verdict])


def render_json(checks: Sequence[Check]) -> str:
    return json.dumps({"ok": passed(checks), "checks": [asdict(c) for c in checks]}, indent=2)
