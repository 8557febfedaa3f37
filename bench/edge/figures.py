"""From raw arrivals and process measurements to the figures, and the side-by-side table."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.edge.capture import Arrival
from bench.edge.model import Sample

MB = 1024 * 1024

# Targets for the agent (issue 3).
TARGET_POINTS_PER_CPU_S = 25_000
TARGET_RSS_MB = 50
TARGET_P50_MS = 5
TARGET_P99_MS = 50


class Tally:
    """Decodes arrivals incrementally; keeps what the figures need."""

    def __init__(self, decode: Callable[[Arrival], list[Sample]]) -> None:
        self._decode = decode
        self._next = 0
        self.distinct: set[tuple[str, str, float]] = set()
        self.polls: set[tuple[str, float]] = set()
        self.readings = 0
        self.bad: list[str] = []
        # per delivered data point: arrival time and read-to-arrival latency (s)
        self.arrived_at: list[float] = []
        self.latency: list[float] = []
        # per message: arrival time and payload size
        self.message_at: list[tuple[float, int]] = []

    def update(self, arrivals: Sequence[Arrival]) -> None:
        end = len(arrivals)
        for arrival in arrivals[self._next : end]:
            self.message_at.append((arrival.at, len(arrival.payload)))
            try:
                samples = self._decode(arrival)
            except Exception as exc:
                self.bad.append(f"{arrival.topic}: {exc}")
                continue
            for s in samples:
                self.readings += 1
                self.distinct.add((s.device, s.metric, s.ts))
                self.polls.add((s.device, s.ts))
                self.arrived_at.append(arrival.at)
                self.latency.append(arrival.at - s.ts)
        self._next = end


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted ``values``; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Result:
    name: str
    window_s: float = 0.0
    cpu_s: float = 0.0
    rss_peak_bytes: int | None = None
    rss_avg_bytes: float = 0.0
    points: int = 0  # data points that arrived in the window
    messages: int = 0
    payload_bytes: int = 0
    latencies_s: list[float] = field(default_factory=list)
    samples_read: int | None = None  # whole run, counted by the simulators
    polls_read: int | None = None
    window_samples_read: int | None = None
    read_window_s: float = 0.0  # the simulators' own window (snapshot to freeze), for the read rate
    samples_delivered: int = 0  # distinct (device, metric, read time), whole run
    polls_delivered: int = 0  # distinct (device, read time)
    readings_delivered: int = 0  # every data point received, repeats included
    bad_messages: int = 0
    sim_cpu_s: float = 0.0
    broker_cpu_s: float = 0.0
    machine_busy: float = 0.0  # fraction of all cores busy during the window (everything on the machine)
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at window start and end
    notes: list[str] = field(default_factory=list)
    unavailable: str | None = None

    @property
    def points_per_s(self) -> float:
        return self.points / self.window_s if self.window_s else math.nan

    @property
    def points_per_cpu_s(self) -> float:
        return self.points / self.cpu_s if self.cpu_s else math.nan

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1000 * self.cpu_s / self.points if self.points else math.nan

    def latency_ms(self, q: float) -> float:
        return 1000 * percentile(self.latencies_s, q)

    @property
    def lost_or_merged(self) -> int | None:
        return None if self.samples_read is None else self.samples_read - self.samples_delivered

    @property
    def every_poll_own_ts(self) -> bool | None:
        if self.samples_read is None or self.polls_read is None:
            return None
        return self.samples_delivered == self.samples_read and self.polls_delivered == self.polls_read


def _num(value: float | int | None, fmt: str = ",.0f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt)


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" met" if ok else " MISSED")


@dataclass(frozen=True)
class Row:
    label: str
    cell: Callable[[Result], str]
    target: str = ""


def _rows() -> list[Row]:
    def rss_peak(r: Result) -> str:
        if r.rss_peak_bytes is None:
            return "n/a"
        return f"{r.rss_peak_bytes / MB:.1f}" + _mark(r.rss_peak_bytes / MB < TARGET_RSS_MB)

    def lat(q: float, target: float) -> Callable[[Result], str]:
        def cell(r: Result) -> str:
            v = r.latency_ms(q)
            return _num(v, ".1f") + ("" if math.isnan(v) else _mark(v < target))

        return cell

    def own_ts(r: Result) -> str:
        ok = r.every_poll_own_ts
        if ok is None:
            return "n/a"
        return f"{_num(r.polls_delivered)} of {_num(r.polls_read)}" + _mark(ok)

    return [
        Row("points/s delivered", lambda r: _num(r.points_per_s)),
        Row("points/s read (simulators)", lambda r: _num(_per_s(r.window_samples_read, r.read_window_s))),
        Row("messages/s", lambda r: _num(r.messages / r.window_s if r.window_s else None, ",.1f")),
        Row("payload bytes per point", lambda r: _num(r.payload_bytes / r.points if r.points else None, ".1f")),
        Row("CPU seconds per 1,000 points", lambda r: _num(r.cpu_ms_per_1000, ".3f")),
        Row(
            "points per CPU-second",
            lambda r: _num(r.points_per_cpu_s) + _mark(_ge(r.points_per_cpu_s, TARGET_POINTS_PER_CPU_S)),
            f">= {TARGET_POINTS_PER_CPU_S:,}",
        ),
        Row("gateway CPU, % of one core", lambda r: _num(100 * r.cpu_s / r.window_s if r.window_s else None, ".1f")),
        Row("RSS peak, MB", rss_peak, f"< {TARGET_RSS_MB}"),
        Row("RSS average, MB", lambda r: _num(r.rss_avg_bytes / MB, ".1f")),
        Row("read-to-broker p50, ms", lat(50, TARGET_P50_MS), f"< {TARGET_P50_MS}"),
        Row("read-to-broker p99, ms", lat(99, TARGET_P99_MS), f"< {TARGET_P99_MS}"),
        Row("read-to-broker max, ms", lambda r: _num(r.latency_ms(100), ".1f")),
        Row("samples read (whole run)", lambda r: _num(r.samples_read)),
        Row("samples delivered, distinct", lambda r: _num(r.samples_delivered)),
        Row("samples merged or lost", lambda r: _num(r.lost_or_merged)),
        Row("polls delivered with own read time", own_ts, "all"),
        Row("repeated deliveries", lambda r: _num(r.readings_delivered - r.samples_delivered)),
        Row("undecodable messages", lambda r: _num(r.bad_messages)),
        Row(
            "simulators CPU, % of one core",
            lambda r: _num(100 * r.sim_cpu_s / r.window_s if r.window_s else None, ".1f"),
        ),
        Row(
            "broker CPU, % of one core",
            lambda r: _num(100 * r.broker_cpu_s / r.window_s if r.window_s else None, ".1f"),
        ),
        Row("machine busy, % of all cores", lambda r: _num(100 * r.machine_busy, ".0f")),
        Row("load average (1 min), start-end", lambda r: f"{r.load[0]:.2f}-{r.load[1]:.2f}"),
    ]


def _per_s(count: int | None, seconds: float) -> float | None:
    return None if count is None or not seconds else count / seconds


def _ge(value: float, target: float) -> bool | None:
    return None if math.isnan(value) else value >= target


def table(results: Sequence[Result]) -> str:
    headers = ["figure", *(r.name for r in results), "target (agent)"]
    body = [
        [row.label, *(("unavailable" if r.unavailable else row.cell(r)) for r in results), row.target]
        for row in _rows()
    ]
    widths = [max(len(line[i]) for line in [headers, *body]) for i in range(len(headers))]

    def fmt(line: list[str]) -> str:
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:-1], widths[1:-1], strict=True)]
        return "| " + " | ".join([*cells, line[-1].ljust(widths[-1])]) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(headers), rule, *(fmt(line) for line in body)])
