"""What the bench polls: N simulated devices of one model, each read for its first P points.

The register map comes from the simulator itself (``misto-sim describe MODEL --json``), so both
gateways are configured from the same source as the devices they read.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


class BenchError(RuntimeError):
    """A problem that stops the bench, with a message that says what and where."""


@dataclass(frozen=True, slots=True)
class Point:
    """One register row of the model (as ``misto-sim describe --json`` prints it)."""

    metric: str
    unit: str
    table: str  # "input" | "holding"
    function: int  # 4 | 3
    address: int
    words: int
    type: str  # uint16 int16 uint32 int32 float32
    word_order: str  # big | little
    scale: float


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    port: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One data point as delivered: which device and metric, and the time it was read."""

    device: str
    metric: str
    ts: float  # unix seconds, as the gateway stamped it


def load_points(venv_bin: Path, model: str, points: int) -> tuple[Point, ...]:
    described = subprocess.run(
        [str(venv_bin / "misto-sim"), "describe", model, "--json"], capture_output=True, text=True, check=False
    )
    if described.returncode != 0:
        raise BenchError(f"--model {model!r}: misto-sim describe failed: {described.stderr.strip()}")
    rows = json.loads(described.stdout)["registers"]
    if not 1 <= points <= len(rows):
        raise BenchError(f"--points {points}: model {model} has {len(rows)} points (1..{len(rows)})")
    return tuple(
        Point(
            metric=r["metric"],
            unit=r["unit"],
            table=r["table"],
            function=int(r["function"]),
            address=int(r["address"]),
            words=int(r["words"]),
            type=r["type"],
            word_order=r["word_order"],
            scale=float(r["scale"]),
        )
        for r in rows[:points]
    )
