"""The state file: the values a correct decoder reads from every served device right now,
rewritten atomically (temp file + ``os.replace``) after every update, so a reader never sees
a half-written file. Tests compare what they decode over Modbus with it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One device in the state file. ``values`` are by row key (``metric`` or ``subdevice/metric``);
    ``faults`` counts requests and what the injected faults did to them."""

    model: str
    host: str
    port: int
    unit: int
    values: Mapping[str, float]
    transport: str = "tcp"
    path: str | None = None
    faults: Mapping[str, int] = field(default_factory=dict)


def utc_text(at: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z``: ``2025-06-03T05:00:00.000Z``."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state_document(updated_at: datetime, devices: Sequence[DeviceState]) -> dict[str, Any]:
    return {
        "updated_at": utc_text(updated_at),
        "devices": [
            {
                "model": d.model,
                "transport": d.transport,
                "host": d.host,
                "port": d.port,
                "path": d.path,
                "unit": d.unit,
                "values": dict(d.values),
                "faults": dict(d.faults),
            }
            for d in devices
        ],
    }


def write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as JSON to ``path`` through a temporary file in the same directory.
    No fsync: readers need atomicity, not durability across a power cut."""
    data = json.dumps(document, indent=2, allow_nan=False).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
