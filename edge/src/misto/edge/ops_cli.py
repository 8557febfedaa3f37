"""The technician's view of a gateway: ``misto-edge status`` (what the running agent sees) and
``misto-edge doctor CONFIG`` (is everything the agent needs there?). Registered in ``cli.py``.

Exit codes: ``status`` 0 when the agent is running and its state is fresh, 1 otherwise;
``doctor`` 0 when no check failed, 1 when one did, 2 for an invalid configuration.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from misto.edge.errors import ConfigError

DEFAULT_CONFIG = Path("/etc/misto/gateway.yaml")
DEFAULT_STATE_FILE = Path("/var/lib/misto/state.json")
EXIT_CONFIG = 2

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]


def state_file_of(config: Path) -> Path:
    """Where the agent run with ``config`` writes its state file (only these keys are read, so a
    technician without access to the broker password can still use ``status``)."""
    from misto.edge.config_errors import read_yaml_file

    data: Any = read_yaml_file(config).data
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{config} is not a gateway configuration")
    base = config.resolve().parent
    state_dir = base / str(data.get("state_dir", DEFAULT_STATE_FILE.parent))
    if data.get("state_file"):
        return base / str(data["state_file"])
    return state_dir / "state.json"


def status(
    config: Annotated[
        Path | None,
        typer.Argument(help=f"The gateway's configuration (default {DEFAULT_CONFIG}, if present).", show_default=False),
    ] = None,
    state_file: Annotated[
        Path | None, typer.Option("--state-file", help="Read this state file instead of the configured one.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the running agent's state: devices, last values, buffer, broker link."""
    from misto.edge.health.state_file import StateFileError, read_state
    from misto.edge.health.status_view import Liveness, liveness, render

    if state_file is None:
        chosen = config or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
        try:
            state_file = state_file_of(chosen) if chosen else DEFAULT_STATE_FILE
        except (ConfigError, typer.BadParameter) as exc:
            typer.echo(f"misto-edge status: {exc}", err=True)
            raise typer.Exit(EXIT_CONFIG) from None
    try:
        state = read_state(state_file)
    except StateFileError as exc:
        if as_json:
            typer.echo(json.dumps({"liveness": "unknown", "error": str(exc)}))
        else:
            typer.echo(f"misto-edge status: {exc}", err=True)
        raise typer.Exit(1) from None
    now = datetime.now(UTC)
    alive = liveness(state, now)
    if as_json:
        import msgspec

        typer.echo(json.dumps({"liveness": alive.value, "state": msgspec.to_builtins(state)}, indent=2))
    else:
        typer.echo(render(state, now))
    if alive is not Liveness.RUNNING:
        raise typer.Exit(1)


def doctor(
    config: Annotated[Path, typer.Argument(help="The gateway's YAML configuration file.", show_default=False)],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each network check.", min=0.1)] = 5.0,
    as_json: JsonOption = False,
) -> None:
    """Check what the agent needs: broker reachable, TLS valid, credentials accepted, clock in sync,
    serial ports present, state directory writable (exit 1 if anything fails)."""
    from misto.edge.doctor import Check, Outcome, config_check, passed, render_json, render_text, run_checks
    from misto.edge.settings import load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        if as_json:
            failed = [Check("config", Outcome.FAIL, issue.render(exc.source)) for issue in exc.issues]
            typer.echo(render_json(failed))
        else:
            typer.echo(f"✘ config  {config}: {len(exc.issues)} error(s)")
            for issue in exc.issues:
                typer.echo(f"  {issue.render(exc.source)}")
        raise typer.Exit(EXIT_CONFIG) from None
    checks = [config_check(config, settings), *run_checks(settings, timeout=timeout)]
    typer.echo(render_json(checks) if as_json else render_text(checks))
    if not passed(checks):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(status)
    app.command()(doctor)
