"""The simulated devices: ``sim_counting.py`` processes (devices spread over several, so one
simulator process is not the bottleneck of a gateway that sends a request per register), and the
counts of the reads they answered."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.edge.model import BenchError, Device, Point
from bench.edge.procs import Child, Usage

LAUNCHER = Path(__file__).resolve().parent / "sim_counting.py"


@dataclass(frozen=True, slots=True)
class ReadCounts:
    """Reads the simulators answered, per device port (``{port: {address: reads}}``), as of ``at``
    (unix time: the latest of the simulators' snapshot or freeze times)."""

    by_port: dict[int, dict[int, int]]
    at: float

    def samples(self, points: Sequence[Point]) -> int:
        """Data points read: for each point, the reads that covered its first register."""
        return sum(reads.get(p.address, 0) for reads in self.by_port.values() for p in points)

    def polls(self, points: Sequence[Point]) -> int:
        """Polls: reads that covered the first point (every poll reads it)."""
        return sum(reads.get(points[0].address, 0) for reads in self.by_port.values())

    def minus(self, earlier: ReadCounts) -> ReadCounts:
        return ReadCounts(
            {
                port: {a: n - earlier.by_port.get(port, {}).get(a, 0) for a, n in reads.items()}
                for port, reads in self.by_port.items()
            },
            self.at,
        )


def _serving(child: Child, devices: int) -> Callable[[], bool]:
    return lambda: child.log_text().count("serving ") >= devices


class Simulators:
    def __init__(self, workdir: Path, devices: Sequence[Device], *, model: str, processes: int) -> None:
        self.workdir = workdir
        self.children: list[Child] = []
        self.counts_files: list[Path] = []
        groups = [list(devices[i::processes]) for i in range(processes)]
        for i, group in enumerate(g for g in groups if g):
            counts = workdir / f"sim-{i}-counts.json"
            argv = [sys.executable, str(LAUNCHER), "--counts", str(counts), "--seed", str(i + 1)]
            for d in group:
                argv += ["--device", f"{model}@127.0.0.1:{d.port}"]
            child = Child(argv, name=f"sim-{i}", log_dir=workdir, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            self.children.append(child)
            self.counts_files.append(counts)
            child.wait_until(_serving(child, len(group)), timeout=30.0, what="serving lines")

    def usage(self) -> Usage:
        parts = [c.usage() for c in self.children]
        return Usage(sum(p.cpu_s for p in parts), sum(p.rss_bytes for p in parts))

    def _collect(self, sig: signal.Signals, *, timeout: float = 10.0) -> ReadCounts:
        sent = time.time()
        for child in self.children:
            child.signal(sig)
        by_port: dict[int, dict[int, int]] = {}
        at = 0.0
        for child, path in zip(self.children, self.counts_files, strict=True):
            deadline = time.monotonic() + timeout
            while True:
                try:
                    document = json.loads(path.read_text(encoding="utf-8"))
                    if document["written_at"] >= sent:
                        break
                except (FileNotFoundError, ValueError):
                    pass
                if time.monotonic() > deadline or not child.alive():
                    raise BenchError(f"{child.name} wrote no counts to {path} within {timeout:g}s:\n{child.log_tail()}")
                time.sleep(0.02)
            at = max(at, document["frozen_at"] or document["written_at"])
            for device in document["devices"]:
                by_port[int(device["port"])] = {int(a): int(n) for a, n in device["reads"].items()}
        return ReadCounts(by_port, at)

    def snapshot(self) -> ReadCounts:
        return self._collect(signal.SIGUSR2)

    def freeze(self) -> ReadCounts:
        """Stop answering (exception 06 from now on) and return the final counts."""
        return self._collect(signal.SIGUSR1)

    def stop(self) -> None:
        for child in self.children:
            child.stop()
