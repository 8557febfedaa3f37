"""``misto-edge doctor``: is this gateway ready to run? Each check ends ✔ (ok), ⚠ (warning),
✘ (failure) or - (not applicable); any failure makes the command exit 1."""

from misto.edge.doctor.checks import config_check, run_checks
from misto.edge.doctor.result import Check, Outcome, passed, render_json, render_text

__all__ = ["Check", "Outcome", "config_check", "passed", "render_json", "render_text", "run_checks"]
