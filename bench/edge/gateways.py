"""The two gateways under test, as data: how to start each against the bench's devices and broker,
which topic it publishes to, how to decode it, and the notes that go under the table."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.edge import misto_gateway, thingsboard
from bench.edge.broker import TB_USER, Broker
from bench.edge.capture import Arrival
from bench.edge.model import Device, Point, Sample
from bench.edge.procs import Child


@dataclass
class Gateway:
    """How to run one gateway and read what it publishes."""

    name: str
    process: str  # the name its Child is started under
    topic: str
    decode: Callable[[Arrival], list[Sample]]
    launch: Callable[[Path, Sequence[Device]], Child]
    answer_tb_limits: bool = False
    is_peer: bool = False
    stop_timeout: float = 10.0
    notes: list[str] = field(default_factory=list)
    log_notes: Callable[[str], list[str]] = lambda log: []
    """Notes read from the gateway's own log after the run."""


@dataclass
class Context:
    args: argparse.Namespace
    workdir: Path
    broker: Broker
    points: tuple[Point, ...]


def misto(ctx: Context) -> Gateway:
    venv_bin = Path(sys.executable).parent

    def launch(workdir: Path, devices: Sequence[Device]) -> Child:
        config = misto_gateway.write_config(
            workdir,
            broker_port=ctx.broker.port,
            password=ctx.broker.passwords[misto_gateway.GATEWAY_ID],
            devices=devices,
            points=ctx.points,
            interval=ctx.args.interval,
            overrides=ctx.args.misto_set,
        )
        env = {k: v for k, v in os.environ.items() if k != "MISTO_BROKER_PASSWORD"}
        return Child([str(venv_bin / "misto-edge"), "run", str(config)], name="misto-edge", log_dir=workdir, env=env)

    def log_notes(log: str) -> list[str]:
        started = re.search(r"starting \(.*agent ([^,)]+)(?:, (\w+) buffer)?\)", log)
        if started is None:
            return []
        return [f"Misto agent {started[1]}" + (f": {started[2]} buffer" if started[2] else "") + " (from its log)."]

    return Gateway(
        "Misto agent",
        "misto-edge",
        misto_gateway.telemetry_topic(),
        misto_gateway.decode,
        launch,
        notes=[
            "Misto agent: `misto-edge run`, log_level info, state_dir in the bench's temp dir, otherwise its "
            "defaults (MQTT 5, QoS 1)" + (f"; set: {', '.join(ctx.args.misto_set)}" if ctx.args.misto_set else "") + "."
        ],
        log_notes=log_notes,
    )


def peer(ctx: Context, script: Path) -> Gateway:
    def launch(workdir: Path, devices: Sequence[Device]) -> Child:
        config_dir = workdir / "config"
        thingsboard.write_config(
            config_dir,
            broker_port=ctx.broker.port,
            username=TB_USER,
            password=ctx.broker.passwords[TB_USER],
            devices=devices,
            points=ctx.points,
            interval=ctx.args.interval,
        )
        (workdir / "logs").mkdir(exist_ok=True)  # its shipped logs.json writes ./logs/*.log
        return Child(
            [str(script)],
            name="thingsboard-gateway",
            log_dir=workdir,
            env=thingsboard.environment(config_dir),
            cwd=workdir,  # it writes ./logs there
            stop_signal=signal.SIGINT,  # its clean stop; SIGTERM kills it outright
        )

    notes = [
        f"ThingsBoard IoT Gateway {thingsboard.VERSION}: shipped tb_gateway.json (memory storage, ON_RECEIVED "
        "report strategy, QoS 1) with remote configuration, remote shell and statistics off; Modbus connector "
        "with one `timeseries` entry (one request) per point."
    ]
    if wrong := thingsboard.word_order_mismatches(ctx.points):
        notes.append(
            f"ThingsBoard: one word order per device, so {', '.join(wrong)} (low word first) is decoded "
            "with the wrong word order; values are not compared here, only counted."
        )

    return Gateway(
        "ThingsBoard GW " + thingsboard.VERSION,
        "thingsboard-gateway",
        thingsboard.TOPIC,
        thingsboard.decode,
        launch,
        answer_tb_limits=True,
        is_peer=True,
        stop_timeout=20.0,
        notes=notes,
    )
