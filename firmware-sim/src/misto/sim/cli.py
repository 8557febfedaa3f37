"""``misto-sim``: list the simulated device models, show their register maps, serve them."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from misto.sim import describe as describe_model
from misto.sim.camera.cli import camera_command
from misto.sim.city.cli import city_command
from misto.sim.clock import Clock, ScaledClock, system_clock
from misto.sim.devices import MODELS, get_model
from misto.sim.errors import SimError, SpecError, UnknownModelError
from misto.sim.faults import FORMAT as FAULT_FORMAT
from misto.sim.faults import FaultSpec, parse_fault
from misto.sim.serial_devices.cli import serial_command
from misto.sim.signals import KYIV
from misto.sim.simulator import DEFAULT_UPDATE_INTERVAL, ServedDevice, run_devices
from misto.sim.spec import FORMAT, DeviceSpec, parse_device_specs

USAGE_ERROR = 2

app = typer.Typer(
    name="misto-sim",
    help="Simulated Misto sensor firmware: Modbus TCP and RTU devices with realistic daily patterns and faults.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show formats like ADDRESS[/UNIT] literally
)


def _fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    typer.echo(f"misto-sim: error: {message}", err=True)
    return typer.Exit(code)


@app.command("list")
def list_models() -> None:
    """The device models, one per line."""
    width = max(len(name) for name in MODELS)
    for name, model in MODELS.items():
        typer.echo(f"{name:<{width}}  {describe_model.summary(model)}")


@app.command()
def describe(
    model: Annotated[str, typer.Argument(help="Model name, as `misto-sim list` shows it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the register map as JSON.")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print it as a Markdown table.")] = False,
) -> None:
    """The register map of one device model."""
    try:
        found = get_model(model)
    except UnknownModelError as exc:
        raise _fail(f"MODEL {model!r}: {exc}") from None
    if as_json and as_markdown:
        raise _fail("--json and --markdown: choose one")
    if as_json:
        typer.echo(json.dumps(describe_model.as_data(found), indent=2, ensure_ascii=False))
    elif as_markdown:
        typer.echo(describe_model.markdown_table(found))
    else:
        typer.echo(describe_model.text_table(found))


def _parse_start(text: str) -> datetime:
    """ISO 8601; without an offset the time is Kyiv local time."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"--start {text!r}: not an ISO 8601 time such as 2025-06-03T08:00:00+03:00") from None
    return at.replace(tzinfo=KYIV) if at.tzinfo is None else at


def _announce(devices: Sequence[ServedDevice]) -> None:
    for served in devices:
        print(served.serving_line(), flush=True)  # the ready signal that scripts and tests wait for


async def _serve(
    specs: list[DeviceSpec],
    *,
    seed: int,
    freeze: bool,
    interval: float,
    state_file: Path | None,
    clock: Clock,
    faults: list[FaultSpec],
    baudrate: int,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_devices(
            specs,
            seed=seed,
            freeze=freeze,
            update_interval=interval,
            state_file=state_file,
            clock=clock,
            on_ready=_announce,
            stop=stop,
            faults=faults,
            baudrate=baudrate,
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command()
def serve(  # noqa: PLR0917 - typer maps parameters to options; callers never pass them positionally
    device: Annotated[
        list[str],
        typer.Option(
            "--device",
            "-d",
            metavar="MODEL@[TRANSPORT:]ADDRESS[/UNIT]",
            help=f"A device to serve: {FORMAT}. Transports: tcp (default), rtu-tcp, pty, serial. Repeatable.",
        ),
    ],
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            "-f",
            metavar="TARGET:KIND[:KEY=VALUE,...]",
            help=f"Inject a fault into a device: {FAULT_FORMAT}. Kinds: stuck, dropout, slow, crc, garbage, "
            "exception, power-loss. Repeatable.",
        ),
    ] = None,
    baudrate: Annotated[
        int, typer.Option(metavar="BAUD", help="Line speed of serial: devices (8 data bits, no parity, 1 stop bit).")
    ] = 9600,
    seed: Annotated[
        int | None, typer.Option(help="Seed for the simulated noise (default: random, printed on stderr at start).")
    ] = None,
    freeze: Annotated[bool, typer.Option("--freeze", help="Compute the values once and hold them.")] = False,
    update_interval: Annotated[
        float, typer.Option(min=0.01, metavar="SECONDS", help="Seconds between register updates.")
    ] = DEFAULT_UPDATE_INTERVAL,
    state_file: Annotated[
        Path | None,
        typer.Option(metavar="PATH", help="JSON file rewritten atomically after every update with the decoded values."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            metavar="TIME", help="Simulate from this ISO 8601 time (no offset: Kyiv local time) instead of now."
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            min=0.001, metavar="FACTOR", help="Run the simulated clock this many times faster than real time."
        ),
    ] = 1.0,
    log_level: Annotated[str, typer.Option(metavar="LEVEL", help="Logging level on stderr.")] = "warning",
) -> None:
    """Serve devices over Modbus TCP or RTU until SIGINT or SIGTERM."""
    level = logging.getLevelNamesMapping().get(log_level.upper())
    if level is None:
        raise _fail(f"--log-level {log_level!r}: expected one of debug, info, warning, error")
    try:
        specs = parse_device_specs(device)
    except ExceptionGroup as group:
        for exc in group.exceptions:
            message = f"{exc.spec!r}: {exc.reason}" if isinstance(exc, SpecError) else str(exc)
            typer.echo(f"misto-sim: error: --device {message}", err=True)
        raise typer.Exit(USAGE_ERROR) from None
    faults: list[FaultSpec] = []
    for text in fault or []:
        try:
            faults.append(parse_fault(text))
        except SpecError as exc:
            typer.echo(f"misto-sim: error: --fault {exc.spec!r}: {exc.reason}", err=True)
    if len(faults) != len(fault or []):
        raise typer.Exit(USAGE_ERROR)
    clock: Clock = system_clock
    if start is not None or speed != 1.0:
        clock = ScaledClock(_parse_start(start) if start is not None else system_clock(), speed=speed)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if seed is None:
        seed = secrets.randbelow(2**31)
        typer.echo(f"misto-sim: seed {seed} (pass --seed {seed} to repeat this run)", err=True)
    try:
        asyncio.run(
            _serve(
                specs,
                seed=seed,
                freeze=freeze,
                interval=update_interval,
                state_file=state_file,
                clock=clock,
                faults=faults,
                baudrate=baudrate,
            )
        )
    except ExceptionGroup as group:  # faults that name no device, or need RTU
        for problem in group.exceptions:
            typer.echo(f"misto-sim: error: --fault {problem}", err=True)
        raise typer.Exit(USAGE_ERROR) from None
    except (SimError, ValueError) as exc:
        raise _fail(str(exc), code=1) from None


app.command("serial")(serial_command)
app.command("camera")(camera_command)
app.command("city")(city_command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
