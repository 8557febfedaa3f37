"""Ingest benchmark: simulated gateways -> a real Mosquitto -> ``misto-cloud serve`` -> each store.

    .venv/bin/python bench/ingest/run.py [--store sqlite,influx] [--readings-per-message 500]
        [--backlog-readings 1000000] [--single-messages 100000] [--live-rate 10000] [--live-seconds 20]

Three measurements per store, all on loopback, every server a child process stopped by PID:

- **backlog**: the ingester's persistent session is created, the ingester stops, a backlog of
  batched gateway messages is published (QoS 1) and held by Mosquitto, then the ingester starts and
  drains it. Sustained readings/s and ingester CPU per 1,000 readings over the drain (from the first
  reading stored to the last), RSS peak. The publisher is not running meanwhile, so the figure is the
  ingester's, with the broker and the database on the same 2 cores.
- **single**: the same with one reading per message (third-party devices publishing directly):
  messages/s.
- **live**: gateways publish at ``--live-rate`` readings/s while a probe gateway publishes one reading
  every 100 ms stamped with the time it was taken; a poller asks the API for the probe's latest
  reading every 10 ms. Reading-to-queryable latency p50/p99 is the time from the reading's stamp to
  the poll that first sees it.

With InfluxDB it also measures the ceiling: the same readings as line protocol in a file, posted
straight to ``influxd`` in 10,000-line batches, without Misto in the path.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import gzip
import os
import platform
import signal
import statistics
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

import psutil
from bench.edge.broker import BENCH_USER, Broker
from bench.edge.procs import CHILDREN
from bench.ingest.load import LoadShape, MessageMaker, Publisher
from bench.ingest.servers import Ingester

from misto.cloud.storage.line_protocol import lines
from misto.cloud.storage.points import to_points
from misto.protocol import Reading, Telemetry, codec, topics
from tests.fixtures.influxd import InfluxInfo, new_influxd

PROBE_GATEWAY = "bench-probe"
PROBE_DEVICE = "bench-probe-aq"
MIN_PROBES = 10


@dataclass
class Figures:
    rows: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str) -> None:
        self.rows[name] = value


def _usage(ingester: Ingester) -> tuple[float, int]:
    assert ingester.child is not None
    usage = ingester.child.usage()
    return usage.cpu_s, usage.rss_bytes


def _wait_stored(ingester: Ingester, expected: int, timeout_s: float) -> tuple[float, float, int, float, float]:
    """Poll a just-started ingester until it has stored ``expected`` readings;
    (t_first, t_done, readings_at_first, cpu_first, cpu_done)."""
    start_count = 0  # its counters start at zero
    deadline = time.monotonic() + timeout_s
    t_first = cpu_first = 0.0
    at_first = start_count
    while True:
        count = ingester.counters()["readings_stored"]
        now = time.monotonic()
        if not t_first and count > start_count:
            t_first, at_first = now, count
            cpu_first, _ = _usage(ingester)
        if count - start_count >= expected:
            cpu_done, _ = _usage(ingester)
            return t_first, now, at_first - start_count, cpu_first, cpu_done
        if now > deadline:
            raise TimeoutError(f"only {count - start_count} of {expected} readings stored within {timeout_s:g}s")
        time.sleep(0.1)


def drain(ingester: Ingester, broker: Broker, shape: LoadShape, *, messages: int, label: str, out: Figures) -> None:
    """Publish a backlog while the ingester is stopped, then time its drain."""
    ingester.stop()
    maker = MessageMaker(shape, boot=f"b{os.getpid()}{label}", live=False)
    publisher = Publisher(broker.host, broker.port, BENCH_USER, broker.passwords[BENCH_USER], client_id=f"pub-{label}")
    began = time.monotonic()
    for topic, payload, _ in maker.take(messages):
        publisher.publish(topic, payload)
    publisher.wait_acked(600)
    publisher.close()
    published_s = time.monotonic() - began
    ingester.start()
    t_first, t_done, at_first, cpu_first, cpu_done = _wait_stored(ingester, maker.readings, 1800)
    _, rss = _usage(ingester)
    span = max(t_done - t_first, 1e-6)
    drained = maker.readings - at_first
    rate = drained / span
    msgs = messages * drained / maker.readings / span
    cpu = cpu_done - cpu_first
    out.add(f"{label}: messages x readings", f"{messages:,} x {shape.readings_per_message}")
    out.add(f"{label}: backlog published in", f"{published_s:.1f} s")
    out.add(f"{label}: readings/s drained", f"{rate:,.0f}")
    out.add(f"{label}: messages/s drained", f"{msgs:,.0f}")
    out.add(f"{label}: ingester CPU s per 1,000 readings", f"{1000 * cpu / max(drained, 1):.4f}")
    out.add(f"{label}: readings per ingester CPU-second", f"{drained / max(cpu, 1e-6):,.0f}")
    out.add(f"{label}: ingester CPU, % of one core", f"{100 * cpu / span:.0f}")
    out.add(f"{label}: ingester RSS, MB", f"{rss / 2**20:.0f}")


class _Live:
    """The live run's three threads: the paced load, the probe and the poller of the API."""

    def __init__(self, ingester: Ingester, broker: Broker, shape: LoadShape, rate: float) -> None:
        password = broker.passwords[BENCH_USER]
        self.ingester = ingester
        self.shape = shape
        self.rate = rate
        self.maker = MessageMaker(shape, boot=f"l{os.getpid()}", live=True)
        self.publisher = Publisher(broker.host, broker.port, BENCH_USER, password, client_id="pub-live")
        self.probe = Publisher(broker.host, broker.port, BENCH_USER, password, client_id="pub-probe")
        self.stop = threading.Event()
        self.sent: dict[int, float] = {}
        self.seen: dict[int, float] = {}

    def load(self) -> None:
        period = self.shape.readings_per_message / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            topic, payload, _ = self.maker.next()
            self.publisher.publish(topic, payload)
            next_at += period
            if (delay := next_at - time.monotonic()) > 0:
                time.sleep(delay)

    def probing(self) -> None:
        seq = 0
        topic = topics.build(PROBE_GATEWAY, topics.Channel.TELEMETRY)
        while not self.stop.is_set():
            now = datetime.now().astimezone()
            reading = Reading(device=PROBE_DEVICE, metric="pm25", value=float(seq % 997), unit="ug/m3", ts=now)
            message = Telemetry(schema=1, gateway=PROBE_GATEWAY, boot="probe", seq=seq, sent_at=now, readings=[reading])
            self.sent[int(now.timestamp() * 1000)] = time.time()
            self.probe.publish(topic, codec.encode(message))
            seq += 1
            self.stop.wait(0.1)

    def polling(self) -> None:
        while not self.stop.is_set():
            try:
                rows = self.ingester.latest(PROBE_DEVICE)
            except OSError:
                rows = []
            wall = time.time()
            for row in rows:
                ts_ms = int(datetime.fromisoformat(row["ts"].replace("Z", "+00:00")).timestamp() * 1000)
                self.seen.setdefault(ts_ms, wall)
            self.stop.wait(0.01)

    def run(self, seconds: float) -> float:
        threads = [threading.Thread(target=f, daemon=True) for f in (self.load, self.probing, self.polling)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(10)
        span = time.monotonic() - began
        self.publisher.wait_acked(60)
        self.probe.wait_acked(60)
        self.publisher.close()
        self.probe.close()
        return span

    def latencies(self) -> list[float]:
        return sorted(self.seen[ts] - ts / 1000 for ts in self.seen if ts in self.sent)


def live(ingester: Ingester, broker: Broker, shape: LoadShape, *, rate: float, seconds: float, out: Figures) -> None:
    """Publish at ``rate`` readings/s and measure reading-to-queryable latency with a probe."""
    run = _Live(ingester, broker, shape, rate)
    stored0 = ingester.counters()["readings_stored"]
    cpu0, _ = _usage(ingester)
    span = run.run(seconds)
    cpu1, rss = _usage(ingester)
    stored = ingester.counters()["readings_stored"] - stored0
    latencies = run.latencies()
    out.add("live: asked readings/s", f"{rate:,.0f} ({shape.readings_per_message} per message)")
    out.add("live: stored readings/s", f"{stored / span:,.0f}")
    out.add("live: ingester CPU, % of one core", f"{100 * (cpu1 - cpu0) / span:.0f}")
    out.add("live: ingester RSS, MB", f"{rss / 2**20:.0f}")
    if len(latencies) >= MIN_PROBES:
        cuts = statistics.quantiles(latencies, n=100)
        shown = f"{1000 * cuts[49]:.0f} / {1000 * cuts[98]:.0f} ({len(latencies)} probes)"
        out.add("live: reading-to-queryable p50 / p99, ms", shown)
    else:
        out.add("live: reading-to-queryable p50 / p99, ms", f"too few probes seen ({len(latencies)})")


def ceiling(influx: InfluxInfo, shape: LoadShape, readings: int, workdir: Path, out: Figures) -> None:
    """``influxd`` alone: the same readings as line protocol from a file, 10,000 lines per POST."""
    maker = MessageMaker(shape, boot="ceiling", live=False)
    path = workdir / "ceiling.lp"
    points = 0
    with path.open("w", encoding="utf-8") as file:
        while maker.readings < readings:
            _, payload, _ = maker.next()
            message = codec.decode_telemetry(payload)
            batch = to_points(message.gateway, message.readings)
            points += len(batch)
            file.write(lines(batch))
    influx.query("CREATE DATABASE ceiling")
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    chunks = [gzip.compress("".join(text[i : i + 10_000]).encode()) for i in range(0, len(text), 10_000)]
    began = time.monotonic()
    for body in chunks:
        request = urllib.request.Request(
            f"{influx.url}/write?db=ceiling&precision=ms", data=body, method="POST",
            headers={"Content-Encoding": "gzip"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 204
    span = time.monotonic() - began
    out.add("ceiling: influxd alone, points/s (10,000-line gzip POSTs)", f"{points / span:,.0f}")
    out.add("ceiling: influxd alone, readings/s", f"{maker.readings / span:,.0f}")


def _store_env(store: str, workdir: Path, influx: InfluxInfo | None) -> dict[str, str]:
    if store == "sqlite":
        return {"MISTO_STORE__BACKEND": "sqlite", "MISTO_STORE__PATH": str(workdir / "misto.db")}
    assert influx is not None
    return {"MISTO_STORE__BACKEND": "influx", "MISTO_STORE__URL": influx.url, "MISTO_STORE__DATABASE": "misto"}


def run_store(store: str, args: argparse.Namespace, workdir: Path) -> Figures:
    out = Figures()
    broker = Broker(workdir / "mosquitto", misto_gateway=PROBE_GATEWAY)
    broker.start()
    influx = new_influxd(workdir / "influxd") if store == "influx" else None
    overrides = dict(item.split("=", 1) for item in args.ingester_env)
    ingester = Ingester(workdir / "ingester", broker, {**_store_env(store, workdir, influx), **overrides})
    try:
        ingester.start()
        shape = LoadShape(args.gateways, args.devices_per_gateway, args.readings_per_message)
        if args.backlog_readings:
            batches = max(1, args.backlog_readings // args.readings_per_message)
            drain(ingester, broker, shape, messages=batches, label="batched", out=out)
        if args.single_messages:
            single = LoadShape(args.gateways, args.devices_per_gateway, 1)
            drain(ingester, broker, single, messages=args.single_messages, label="single", out=out)
        if args.live_seconds:
            live(ingester, broker, shape, rate=args.live_rate, seconds=args.live_seconds, out=out)
        if influx is not None and args.ceiling_readings:
            ceiling(influx, shape, args.ceiling_readings, workdir, out)
        assert ingester.child is not None
        peak = ingester.child.peak_rss_bytes()
        out.add("ingester RSS peak (whole run), MB", f"{(peak or 0) / 2**20:.0f}")
        counters = ingester.counters()
        out.add("dead letters / duplicates / store retries", f"{sum(counters['dead_letters'].values())} / "
                f"{counters['duplicates']} / {counters['store_retries']}")  # fmt: skip
    finally:
        ingester.stop()
        if influx is not None:
            influx.stop()
        broker.stop()
    return out


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="sqlite,influx", help="comma-separated: sqlite, influx")
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--devices-per-gateway", type=int, default=200)
    parser.add_argument("--readings-per-message", type=int, default=500)
    parser.add_argument("--backlog-readings", type=int, default=1_000_000)
    parser.add_argument("--single-messages", type=int, default=60_000)
    parser.add_argument("--live-rate", type=float, default=10_000.0)
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument("--ceiling-readings", type=int, default=1_000_000)
    parser.add_argument("--ingester-env", action="append", default=[], metavar="MISTO_KEY=VALUE",
                        help="an environment setting of the ingester, e.g. MISTO_INGEST__QUEUE_SIZE=5000")  # fmt: skip
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)  # stop the children on `timeout` or `kill`, too
    stores = [s.strip() for s in args.store.split(",") if s.strip()]
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}; load average {os.getloadavg()}")  # fmt: skip
    print(f"city: {args.gateways} gateways x {args.devices_per_gateway} air-quality devices, 6 metrics each")
    results: dict[str, Figures] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="misto-bench-ingest-") as tmp:
            for store in stores:
                print(f"measuring {store} ...", flush=True)
                results[store] = run_store(store, args, Path(tmp) / store)
    finally:
        CHILDREN.stop_all()
    names = list(dict.fromkeys(name for figures in results.values() for name in figures.rows))
    width = max(len(n) for n in names)
    print()
    print(f"| {'figure':<{width}} | " + " | ".join(f"{s:>24}" for s in results) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 26 for _ in results) + "|")
    for name in names:
        print(f"| {name:<{width}} | " + " | ".join(f"{results[s].rows.get(name, ''):>24}" for s in results) + " |")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
