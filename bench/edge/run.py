"""Edge benchmark: the Misto gateway agent, side by side with the ThingsBoard IoT Gateway.

    .venv/bin/python bench/edge/run.py --devices 20 --points 6 --interval 0.1 --seconds 30 [--peer thingsboard]

For each gateway, on loopback only: N simulated Modbus TCP devices (``sim_counting.py``, which
counts every read it answers), a private Mosquitto with passwords and an ACL, a subscriber that
stamps each message's arrival and decodes it, and the gateway itself as a subprocess measured
with psutil over a steady-state window. Prints one table (see README.md for what each figure
means) with the agent's targets from issue 3 marked met or MISSED. Everything started is stopped
by PID on the way out, also on Ctrl-C, errors and the overall time limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench.edge` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import argparse
import os
import platform
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

import psutil
from bench.edge import misto_gateway, thingsboard
from bench.edge.broker import BENCH_USER, Broker, free_ports
from bench.edge.capture import Capture
from bench.edge.figures import Result, Tally, table
from bench.edge.gateways import Context, Gateway, misto, peer
from bench.edge.model import BenchError, Device, Point, load_points
from bench.edge.procs import CHILDREN, Child, ChildFailed, Usage
from bench.edge.simulators import ReadCounts, Simulators

REPO = Path(__file__).resolve().parents[2]
TB_VENV = REPO / ".run" / "bench" / "thingsboard-venv"
NO_USAGE = Usage(0.0, 0)


class BenchTimeout(Exception):
    """The overall time limit passed."""


def _sleep_watching(child: Child, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not child.alive():
            raise ChildFailed(child.name, f"{child.name} exited with {child.popen.returncode}:\n{child.log_tail()}")
        time.sleep(0.1)


@dataclass
class Window:
    """Readings of the machine at the start (``*0``) and end (``*1``) of the measurement window."""

    t0: float
    load0: float
    gw0: Usage
    sim0: Usage
    br0: Usage
    cpu0: tuple[float, float]
    before: ReadCounts
    rss: list[int] = field(default_factory=list)
    t1: float = 0.0
    load1: float = 0.0
    gw1: Usage = NO_USAGE
    sim1: Usage = NO_USAGE
    br1: Usage = NO_USAGE
    cpu1: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def open(cls, child: Child, sims: Simulators, broker: Child) -> Window:
        before = sims.snapshot()
        return cls(time.time(), os.getloadavg()[0], child.usage(), sims.usage(), broker.usage(), _machine_cpu(), before)

    def run(self, child: Child, seconds: float) -> None:
        """Sample the gateway's RSS 4 times a second until ``seconds`` have passed (or it dies)."""
        while time.time() < self.t0 + seconds:
            self.rss.append(child.usage().rss_bytes)
            _sleep_watching(child, min(0.25, max(0.0, self.t0 + seconds - time.time())))

    def close(self, child: Child, sims: Simulators, broker: Child) -> None:
        self.t1, self.load1 = time.time(), os.getloadavg()[0]
        self.gw1, self.sim1, self.br1, self.cpu1 = child.usage(), sims.usage(), broker.usage(), _machine_cpu()


def measure(ctx: Context, gateway: Gateway, index: int) -> Result:
    """Run one gateway against fresh simulators and measure it; see README.md for the method."""
    args = ctx.args
    workdir = ctx.workdir / f"{index}-{gateway.name.split()[0].lower()}"
    devices = [Device(f"bench-{args.model}-{i:03d}", port) for i, port in enumerate(free_ports(args.devices))]
    result = Result(gateway.name, notes=list(gateway.notes))
    tally = Tally(gateway.decode)
    broker = ctx.broker.child
    assert broker is not None
    sims = Simulators(workdir / "sims", devices, model=args.model, processes=args.sim_processes)
    try:
        with Capture(
            host=ctx.broker.host,
            port=ctx.broker.port,
            username=BENCH_USER,
            password=ctx.broker.passwords[BENCH_USER],
            topic=gateway.topic,
            answer_tb_limits=gateway.answer_tb_limits,
        ) as capture:
            child = gateway.launch(workdir, devices)
            try:
                child.wait_until(lambda: bool(capture.arrivals), timeout=args.startup_timeout, what="telemetry")
                _sleep_watching(child, args.warmup)
                window = Window.open(child, sims, broker)
                window.run(child, args.seconds)
                window.close(child, sims, broker)
                result.rss_peak_bytes = child.peak_rss_bytes()
                final = sims.freeze()
                _drain(capture, tally, final.samples(ctx.points), args)
                if gateway.answer_tb_limits:
                    result.notes.append(f"{gateway.name}: session-limits requests answered: {capture.limits_answered}")
            finally:
                child.stop(timeout=gateway.stop_timeout)
                result.notes += gateway.log_notes(child.log_text())
    finally:
        sims.stop()
    tally.update(capture.arrivals)
    _summarise(result, tally, window, final, ctx.points)
    return result


def _summarise(result: Result, tally: Tally, w: Window, final: ReadCounts, points: Sequence[Point]) -> None:
    in_window = [i for i, at in enumerate(tally.arrived_at) if w.t0 <= at <= w.t1]
    window_messages = [size for at, size in tally.message_at if w.t0 <= at <= w.t1]
    result.window_s = w.t1 - w.t0
    result.cpu_s = w.gw1.cpu_s - w.gw0.cpu_s
    result.rss_avg_bytes = sum(w.rss) / len(w.rss) if w.rss else 0.0
    result.points = len(in_window)
    result.latencies_s = [tally.latency[i] for i in in_window]
    result.messages, result.payload_bytes = len(window_messages), sum(window_messages)
    result.samples_read, result.polls_read = final.samples(points), final.polls(points)
    result.window_samples_read = final.minus(w.before).samples(points)
    result.read_window_s = final.at - w.before.at
    result.samples_delivered, result.polls_delivered = len(tally.distinct), len(tally.polls)
    result.readings_delivered, result.bad_messages = tally.readings, len(tally.bad)
    result.sim_cpu_s, result.broker_cpu_s = w.sim1.cpu_s - w.sim0.cpu_s, w.br1.cpu_s - w.br0.cpu_s
    result.machine_busy, result.load = _busy_fraction(w.cpu0, w.cpu1), (w.load0, w.load1)
    result.notes += [f"{result.name}: undecodable message: {bad}" for bad in tally.bad[:3]]


def _drain(capture: Capture, tally: Tally, expected: int, args: argparse.Namespace) -> None:
    """After the simulators froze, wait until everything read has arrived, or nothing more arrives."""
    quiet = max(3.0, 5 * args.interval)
    deadline = time.monotonic() + args.drain
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        tally.update(capture.arrivals)
        if len(tally.distinct) >= expected:
            return
        if len(capture.arrivals) != last_count:
            last_count, last_change = len(capture.arrivals), time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return
        time.sleep(0.1)


def _machine_cpu() -> tuple[float, float]:
    """CPU seconds of the whole machine so far: (all, idle including I/O wait)."""
    times = psutil.cpu_times()
    return float(sum(times)), float(times.idle + getattr(times, "iowait", 0.0))


def _busy_fraction(before: tuple[float, float], after: tuple[float, float]) -> float:
    total, idle = after[0] - before[0], after[1] - before[1]
    return 1 - idle / total if total > 0 else 0.0


def machine_summary() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores ({model}), {memory:.0f} GiB, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; load average before the bench: {load}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=20, help="simulated devices (default 20)")
    parser.add_argument("--points", type=int, default=6, help="points read per device: the model's first P (default 6)")
    parser.add_argument("--model", default="aq1", help="simulated device model (default aq1)")
    parser.add_argument("--interval", type=float, default=0.1, help="poll interval, seconds (default 0.1)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window, seconds (default 30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the first telemetry (default 5)")
    parser.add_argument("--peer", choices=["none", "thingsboard"], default="none", help="also run this gateway")
    parser.add_argument("--peer-only", action="store_true", help="run only the peer (needs --peer)")
    parser.add_argument(
        "--misto-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a key of the agent's config (dotted path, YAML value), e.g. buffer.kind=memory; repeatable",
    )
    parser.add_argument("--sim-processes", type=int, default=2, help="simulator processes (default 2)")
    parser.add_argument("--startup-timeout", type=float, default=90.0, help="wait for the first telemetry (s)")
    parser.add_argument("--drain", type=float, default=20.0, help="longest wait for late messages (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs) and print its path")
    args = parser.parse_args(argv)
    problems = []
    if args.devices < 1:
        problems.append("--devices must be at least 1")
    if not 0.01 <= args.interval <= 60:
        problems.append("--interval must be between 0.01 and 60 seconds")
    if not 1 <= args.seconds <= 3600:
        problems.append("--seconds must be between 1 and 3600")
    if args.sim_processes < 1:
        problems.append("--sim-processes must be at least 1")
    if args.peer_only and args.peer == "none":
        problems.append("--peer-only needs --peer")
    if problems:
        parser.error("; ".join(problems))
    return args


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise BenchTimeout("the bench ran past its time limit")


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def gateways_to_run(ctx: Context) -> list[Gateway | Result]:
    """The agent (unless --peer-only) and the peer; a peer that cannot be installed is a Result saying why."""
    gateways: list[Gateway | Result] = [] if ctx.args.peer_only else [misto(ctx)]
    if ctx.args.peer == "thingsboard":
        try:
            script = thingsboard.ensure_installed(TB_VENV, log_path=TB_VENV.parent / "thingsboard-install.log")
            gateways.append(peer(ctx, script))
        except thingsboard.PeerUnavailable as exc:
            gateways.append(Result(f"ThingsBoard GW {thingsboard.VERSION}", unavailable=str(exc)))
    return gateways


def run_all(args: argparse.Namespace, workdir: Path) -> list[Result]:
    points = load_points(Path(sys.executable).parent, args.model, args.points)
    print(machine_summary())
    print(
        f"setup: {args.devices} simulated {args.model} devices x {args.points} points "
        f"({', '.join(p.metric for p in points)}), poll every {args.interval:g}s, "
        f"window {args.seconds:g}s after {args.warmup:g}s warm-up, {args.sim_processes} simulator process(es), "
        "private Mosquitto, all on loopback",
        flush=True,
    )
    broker = Broker(workdir / "broker", misto_gateway.GATEWAY_ID)
    broker.start()
    ctx = Context(args, workdir, broker, points)
    gateways = gateways_to_run(ctx)
    per_gateway = args.startup_timeout + args.warmup + args.seconds + args.drain + 90
    signal.alarm(int(per_gateway * len(gateways)) + 60)  # the whole run is bounded; installing is not counted
    results: list[Result] = []
    for i, gw in enumerate(gateways):
        if isinstance(gw, Result):
            results.append(gw)
            continue
        print(f"measuring {gw.name} ...", flush=True)
        try:
            results.append(measure(ctx, gw, i))
        except ChildFailed as exc:
            if not (gw.is_peer and exc.name == gw.process):
                raise
            results.append(Result(gw.name, unavailable=str(exc)))  # the peer degrades; the bench goes on
    signal.alarm(0)
    return results


def report(results: Sequence[Result]) -> None:
    print()
    print(table(results))
    for r in results:
        if r.unavailable:
            print(f"\npeer unavailable: {r.unavailable}")
        for note in r.notes:
            print(f"- {note}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(sys.executable).parent / "misto-edge").exists():
        print(f"bench: misto-edge is not next to {sys.executable}: run with the project's .venv/bin/python")
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGALRM, _on_alarm)
    workdir = Path(tempfile.mkdtemp(prefix="misto-bench-edge-"))
    failed = True
    try:
        report(run_all(args, workdir))
        failed = False
        return 0
    except (BenchError, ChildFailed, BenchTimeout) as exc:
        print(f"bench: error: {exc}")
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; stopping what it started")
        return 130
    finally:
        signal.alarm(0)
        CHILDREN.stop_all()
        if args.keep or failed:
            print(f"work dir (configs, logs): {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
