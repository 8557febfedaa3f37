"""Sizes in configuration: a number of bytes (``1048576``) or a string with a unit (``"64KB"``,
``"512MB"``, ``"1GB"``; ``KiB``/``MiB``/``GiB`` too). Units are binary (1 KB = 1024 bytes), as
disk and memory sizes are usually meant on a gateway."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?$", re.IGNORECASE)
_UNIT_BYTES = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
HINT = "a positive size such as 1048576, '64KB', '512MB' or '1GB'"


def parse_size(value: object) -> int:
    """Bytes as an int; :class:`ValueError` saying what is accepted otherwise. Zero or less is refused."""
    if isinstance(value, bool):
        raise ValueError(f"must be {HINT}, not {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value.strip())):
        unit = (match[2] or "b").lower().replace("i", "")
        size = int(float(match[1]) * _UNIT_BYTES[unit])
    else:
        raise ValueError(f"must be {HINT}, not {value!r}")
    if size <= 0:
        raise ValueError(f"must be {HINT}, not {value!r}")
    return size


ByteSize = Annotated[int, BeforeValidator(parse_size)]
"""A pydantic field type: positive bytes, written as a number or with a unit."""
