"""The technician's command line: ``misto-edge run CONFIG`` and ``misto-edge validate CONFIG``.

Exit codes: 0 success, 2 invalid configuration, 1 any other failure.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from misto.edge import __version__
from misto.edge.errors import ConfigError, EdgeError

EXIT_CONFIG = 2

app = typer.Typer(
    name="misto-edge",
    help="Misto gateway agent: reads sensors over Modbus and publishes telemetry over MQTT.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show formats like ADDRESS[/UNIT] literally
)

ConfigArg = Annotated[Path, typer.Argument(help="The gateway's YAML configuration file.", show_default=False)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"misto-edge {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Misto gateway agent."""


def _config_failed(exc: ConfigError, *, as_json: bool) -> typer.Exit:
    if as_json:
        issues = [{"path": i.path, "message": i.message, "line": i.line, "column": i.column} for i in exc.issues]
        typer.echo(json.dumps({"ok": False, "file": exc.source, "errors": issues}, indent=2))
    else:
        typer.echo(f"config INVALID: {len(exc.issues)} error(s)", err=True)
        for issue in exc.issues:
            typer.echo(issue.render(exc.source), err=True)
    return typer.Exit(EXIT_CONFIG)


@app.command()
def validate(
    config: ConfigArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check a configuration file and report every error at once (exit 2 if there are any)."""
    from misto.edge.settings import load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise _config_failed(exc, as_json=as_json) from None
    devices, registers = len(settings.devices), settings.register_count()
    if as_json:
        typer.echo(json.dumps({"ok": True, "file": str(config), "devices": devices, "registers": registers}))
    else:
        typer.echo(f"config OK: {devices} devices, {registers} registers")


@app.command()
def run(config: ConfigArg) -> None:
    """Run the agent until SIGINT or SIGTERM."""
    from misto.edge.agent import run_until_signalled
    from misto.edge.logs import configure_logging
    from misto.edge.remote_config.startup import load_for_run

    try:
        settings, remote = load_for_run(config)
    except ConfigError as exc:
        raise _config_failed(exc, as_json=False) from None
    configure_logging(settings.log_level)
    remote.log_notes()
    try:
        asyncio.run(run_until_signalled(settings, remote=remote))
    except EdgeError as exc:
        typer.echo(f"misto-edge: {exc}", err=True)
        raise typer.Exit(1) from None


from misto.edge.ops_cli import register as _register_ops  # noqa: E402 - after the commands above, keeps their order

_register_ops(app)

from misto.edge.field_cli import register as _register_field  # noqa: E402 - as above

_register_field(app)

from misto.edge.provision import register as _register_provision  # noqa: E402 - as above

_register_provision(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
