"""Durations in configuration: a number of seconds (``5``, ``2.5``) or a string with units
(``"500ms"``, ``"5s"``, ``"1m"``, ``"1h"``, ``"1m30s"``)."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
HINT = "a positive duration such as 5, 2.5, '500ms', '5s', '1m' or '1h'"


def parse_duration(value: object) -> float:
    """Seconds as a float; :class:`ValueError` saying what is accepted otherwise. Zero or less is refused."""
    seconds: float
    if isinstance(value, bool):
        raise ValueError(f"must be {HINT}, not {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            if not _WHOLE.match(text):
                raise ValueError(f"must be {HINT}, not {value!r}") from None
            seconds = sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART.findall(text))
    else:
        raise ValueError(f"must be {HINT}, not {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be {HINT}, not {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: positive seconds, written as a number or with units."""
