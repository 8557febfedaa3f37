"""``misto-sim serial``: serve raw serial devices on pseudo-terminals."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from misto.sim.command_options import USAGE_ERROR, fail, host_port, make_clock, pick_seed, setup_logging
from misto.sim.errors import SimError, SpecError
from misto.sim.serial_devices.faults import FaultKind
from misto.sim.serial_devices.models import SERIAL_MODELS
from misto.sim.serial_devices.runner import FORMAT, SerialSpec, parse_serial_spec
from misto.sim.serial_devices.service import DEFAULT_PERIOD, SerialSimulator, run_serial


def _specs(texts: list[str]) -> list[SerialSpec]:
    specs, errors = [], []
    for text in texts:
        try:
            specs.append(parse_serial_spec(text))
        except SpecError as exc:
            errors.append(f"--device {exc.spec!r}: {exc.reason}")
    if errors:
        for error in errors:
            typer.echo(f"misto-sim: error: {error}", err=True)
        raise typer.Exit(USAGE_ERROR)
    return specs


def _rates(texts: list[str]) -> dict[FaultKind, float]:
    rates: dict[FaultKind, float] = {}
    for text in texts:
        kind, _, rate = text.partition("=")
        try:
            rates[FaultKind(kind)] = float(rate)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise fail(f"--fault-rate {text!r}: expected KIND=P with KIND one of {known} and P in 0..1") from None
        if not 0.0 <= rates[FaultKind(kind)] <= 1.0:
            raise fail(f"--fault-rate {text!r}: the rate is a probability per message, 0..1")
    return rates


def _announce(sim: SerialSimulator) -> None:
    for runner in sim.runners:
        print(runner.serving_line(), flush=True)
    if sim.control is not None:
        host = f"[{sim.control.host}]" if ":" in sim.control.host else sim.control.host
        print(f"control on http://{host}:{sim.control.port}", flush=True)


async def _serve(specs: list[SerialSpec], **options: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_serial(specs, on_ready=_announce, stop=stop, **options)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def serial_command(  # noqa: PLR0917 - typer maps parameters to options
    device: Annotated[
        list[str],
        typer.Option(
            "--device",
            "-d",
            metavar="MODEL@PATH",
            help=f"A serial device ({', '.join(SERIAL_MODELS)}) on a pseudo-terminal linked at PATH: {FORMAT}.",
        ),
    ],
    seed: Annotated[int | None, typer.Option(help="Seed for the simulated noise and faults (default: random).")] = None,
    freeze: Annotated[bool, typer.Option("--freeze", help="Compute the values once and hold them.")] = False,
    period: Annotated[
        float,
        typer.Option(min=0.1, metavar="SECONDS", help="Seconds between messages (the SDS011 sends one a second)."),
    ] = DEFAULT_PERIOD,
    fault_rate: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KIND=P", help="Random faults: probability per message of garbage, corrupt, truncate, silence."
        ),
    ] = None,
    control: Annotated[
        str | None, typer.Option(metavar="HOST:PORT", help="HTTP control endpoint: GET /state, POST /devices/N/faults.")
    ] = None,
    state_file: Annotated[
        Path | None, typer.Option(metavar="PATH", help="JSON file rewritten atomically after every message.")
    ] = None,
    start: Annotated[str | None, typer.Option(metavar="TIME", help="Simulate from this ISO 8601 time.")] = None,
    speed: Annotated[float, typer.Option(min=0.001, metavar="FACTOR", help="Simulated clock speed.")] = 1.0,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="Logging level on stderr.")] = "warning",
) -> None:
    """Serve raw serial devices on pseudo-terminals until SIGINT or SIGTERM."""
    specs = _specs(device)
    rates = _rates(fault_rate or [])
    where = host_port("--control", control) if control is not None else None
    clock = make_clock(start, speed)
    setup_logging(log_level)
    options = {
        "seed": pick_seed(seed),
        "freeze": freeze,
        "period": period,
        "rates": rates,
        "clock": clock,
        "control": where,
        "state_file": state_file,
    }
    try:
        asyncio.run(_serve(specs, **options))
    except SimError as exc:
        raise fail(str(exc), code=1) from None
    except ExceptionGroup as group:
        for problem in group.exceptions:
            typer.echo(f"misto-sim: error: {problem}", err=True)
        raise typer.Exit(USAGE_ERROR) from None
