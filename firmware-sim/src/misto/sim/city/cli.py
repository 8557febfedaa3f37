"""``misto-sim city``: generate a city's messages for a span of time and print what it made, or
write them as NDJSON (one ``{"topic": ..., "payload": ...}`` per line, payloads exactly as
``misto.protocol.encode`` puts them on the wire) for a loader or a benchmark to replay."""

from __future__ import annotations

import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from misto.protocol import Health, Status, Telemetry, encode
from misto.sim.city.city import City
from misto.sim.city.spec import CitySpec, CitySpecError
from misto.sim.command_options import fail


def city_command(  # noqa: PLR0917 - typer maps parameters to options
    gateways: Annotated[int, typer.Option(min=1, help="Gateways in the city.")] = 20,
    devices: Annotated[int, typer.Option(min=1, help="Devices, spread evenly over the gateways.")] = 1000,
    hours: Annotated[float, typer.Option(min=0.0, help="Span of time to generate.")] = 24.0,
    seed: Annotated[int, typer.Option(help="Seed: the same seed and start give the same messages.")] = 1,
    poll_interval: Annotated[float, typer.Option(min=1.0, metavar="SECONDS", help="Poll cycle.")] = 300.0,
    start: Annotated[
        str | None, typer.Option(metavar="TIME", help="ISO 8601 start (default: HOURS before now, whole minutes).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write NDJSON here ('-' for stdout).", dir_okay=False)] = None,
) -> None:
    """Generate a simulated city's telemetry, health and status messages; print a summary."""
    try:
        spec = CitySpec(gateways=gateways, devices=devices, seed=seed, poll_interval_s=poll_interval)
    except CitySpecError as exc:
        raise fail(str(exc)) from None
    if start is None:
        begin = datetime.fromtimestamp(time.time() // 60 * 60, UTC) - timedelta(hours=hours)
    else:
        try:
            begin = datetime.fromisoformat(start)
        except ValueError:
            raise fail(f"--start {start!r}: not an ISO 8601 time such as 2025-06-04T00:00:00+00:00") from None
        if begin.tzinfo is None:
            raise fail(f"--start {start!r}: give an offset, e.g. {start}+00:00")
    city = City(spec, start=begin)
    counts: Counter[str] = Counter()
    sink = None if out is None else (sys.stdout.buffer if str(out) == "-" else out.open("wb"))
    try:
        for topic, message in city.messages(begin + timedelta(hours=hours)):
            counts[type(message).__name__] += 1
            if isinstance(message, Telemetry):
                counts["readings"] += len(message.readings)
            if sink is not None:
                sink.write(b'{"topic":"' + topic.encode() + b'","payload":' + encode(message) + b"}\n")
    finally:
        if sink is not None and sink is not sys.stdout.buffer:
            sink.close()
    summary = (
        f"city seed {seed}: {gateways} gateways, {len(city.devices)} devices, {hours:g} h from {begin.isoformat()}: "
        f"{counts[Telemetry.__name__]} telemetry messages ({counts['readings']} readings), "
        f"{counts[Health.__name__]} health, {counts[Status.__name__]} status"
    )
    typer.echo(summary, err=out is not None and str(out) == "-")
