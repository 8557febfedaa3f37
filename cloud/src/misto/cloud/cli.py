"""``misto-cloud``: run the cloud service or check its configuration.

Exit codes: 0 success, 1 a part of the service failed at run time, 2 invalid configuration or
usage (every configuration error is listed on stderr with its key).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from misto.cloud import __version__
from misto.cloud.auth import cli as auth_cli
from misto.cloud.dashboards.cli import app as dashboards_app
from misto.cloud.errors import CloudError, ConfigError
from misto.cloud.registry.bulk_cli import app as registry_app
from misto.cloud.registry.layers_cli import app as layers_app
from misto.cloud.registry.mosquitto_files import BrokerFiles, write_mosquitto_files
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.service import CloudService, ServiceUrls
from misto.cloud.settings import CloudSettings, LogLevel, load_settings

EXIT_FAILURE = 1
EXIT_CONFIG = 2

app = typer.Typer(
    name="misto-cloud",
    help="Misto cloud: MQTT ingester, reading store and HTTP API.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show formats like ADDRESS[/UNIT] literally
)
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(auth_cli.users_app, name="users")
app.add_typer(auth_cli.keys_app, name="api-keys")
app.add_typer(registry_app, name="registry")
app.add_typer(layers_app, name="layers")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML settings file (see config/misto-cloud.sample.yaml); MISTO_* variables override it.",
        dir_okay=False,
    ),
]


@app.command()
def serve(
    config: ConfigOption = None,
    embedded_broker: Annotated[
        bool, typer.Option("--embedded-broker", help="Run the in-process MQTT broker (embedded_broker.enabled).")
    ] = False,
) -> None:
    """Run the ingester and the HTTP API (and the embedded broker if enabled) until SIGINT/SIGTERM."""
    overrides: dict[str, Any] = {"embedded_broker": {"enabled": True}} if embedded_broker else {}
    settings = _load(config, overrides)
    _setup_logging(settings.log_level)
    try:
        asyncio.run(_serve(settings))
    except CloudError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    typer.echo("misto-cloud: stopped")


@app.command("check-config")
def check_config(
    file: Annotated[Path, typer.Argument(help="YAML settings file to check.", dir_okay=False)],
) -> None:
    """Validate a settings file (with the MISTO_* environment applied); exit 2 listing every error."""
    settings = _load(file, {})
    broker = settings.broker
    embedded = settings.embedded_broker
    typer.echo(f"{file}: OK")
    typer.echo(f"  broker: {broker.url} as {broker.username or '(anonymous)'}, client id {broker.client_id}")
    if embedded.enabled:
        typer.echo(f"  embedded broker: mqtt://{embedded.host}:{embedded.port}, {len(embedded.users)} user(s)")
    typer.echo(f"  store: {settings.store.backend} at {settings.store.location}")
    typer.echo(f"  control: sqlite at {settings.control.database(settings.store)}")
    typer.echo(f"  registry: {settings.registry.display_url(settings.store)}")
    token = "set" if settings.api.operator_token_value() else "not set (operator endpoints disabled)"
    typer.echo(f"  api: http://{settings.api.host}:{settings.api.port}, operator token {token}")


@app.command("broker-files")
def broker_files(
    passwd: Annotated[
        Path, typer.Option("--passwd", help="Mosquitto password file to write (password_file).", dir_okay=False)
    ],
    acl: Annotated[Path, typer.Option("--acl", help="Mosquitto ACL file to write (acl_file).", dir_okay=False)],
    reload_pid: Annotated[
        int | None, typer.Option("--reload-pid", help="Mosquitto's PID: SIGHUP it to reload both files.", min=1)
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write Mosquitto's password and ACL files from the registry's broker accounts (docs/broker-access.md)."""
    settings = _load(config, {})
    url = settings.registry.database_url(settings.store)
    try:
        written = asyncio.run(_broker_files(url, passwd, acl, reload_pid))
    except CloudError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    typer.echo(f"{written.passwd_path}: {len(written.usernames)} account(s), {len(written.gateways)} gateway(s)")
    typer.echo(f"{written.acl_path}: their topics")
    if written.reloaded_pid is not None:
        typer.echo(f"sent SIGHUP to Mosquitto (pid {written.reloaded_pid})")


async def _broker_files(url: str, passwd: Path, acl: Path, reload_pid: int | None) -> BrokerFiles:
    registry = await SqlRegistry.open(url)
    try:
        return await write_mosquitto_files(registry, passwd, acl, reload_pid=reload_pid)
    finally:
        await registry.close()


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _load(config: Path | None, overrides: dict[str, Any]) -> CloudSettings:
    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        typer.echo(f"misto-cloud: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _setup_logging(level: LogLevel) -> None:
    logging.basicConfig(
        level=level.value.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    if level is not LogLevel.DEBUG:
        # httpx logs every request to InfluxDB at INFO: thousands a minute under load
        for noisy in ("amqtt", "transitions", "misto.cloud.ingest.mqtt.paho", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


async def _serve(settings: CloudSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def ready(urls: ServiceUrls) -> None:
        for line in urls.lines():
            typer.echo(line)

    await CloudService(settings).run(stop, on_ready=ready)


def main() -> None:
    app()
