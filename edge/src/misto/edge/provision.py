"""``misto-edge provision --server URL --token T``: exchange a one-time provisioning token for the
gateway's MQTT credentials and a first configuration (docs/provisioning.md).

Writes two files in ``--config-dir`` (default ``/etc/misto``), each created with mode 0600 (a
temporary file opened with that mode, then renamed into place: never readable by others, even for
a moment): ``mqtt.password`` (the broker secret) and ``gateway.yaml`` (gateway id, broker URL and
username, ``password_file: mqtt.password``, no devices yet). The registry knows which devices the
gateway has but not how they are wired (bus, address, unit id): they are listed as comments for
the technician to complete. Existing files are left alone unless ``--force``; that is checked
before the token is spent.

Exit codes: 0 written, 1 refused or unreachable, 2 bad arguments or existing files.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
import yaml

from misto.edge.errors import ConfigError, EdgeError
from misto.edge.settings import PASSWORD_ENV, settings_from_data

DEFAULT_CONFIG_DIR = Path("/etc/misto")
CONFIG_NAME = "gateway.yaml"
PASSWORD_NAME = "mqtt.password"  # noqa: S105 - a file name
PROVISION_PATH = "/api/v1/provision"
TIMEOUT_S = 20.0
FILE_MODE = 0o600
EXIT_REFUSED = 1
EXIT_USAGE = 2
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ProvisionError(EdgeError):
    """Provisioning failed; ``exit_code`` is what the command exits with."""

    def __init__(self, message: str, *, exit_code: int = EXIT_REFUSED) -> None:
        self.message = message
        self.exit_code = exit_code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Provisioned:
    gateway_id: str
    config_path: Path
    password_path: Path
    devices: tuple[dict[str, str], ...]
    warnings: tuple[str, ...]


def check_server(server: str) -> str:
    """The API's base URL without a trailing slash; :class:`ProvisionError` naming what is wrong."""
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https"):
        raise ProvisionError(f"--server: must start with https:// (or http://), got {server!r}", exit_code=EXIT_USAGE)
    if not parts.hostname:
        raise ProvisionError(f"--server: has no host: {server!r}", exit_code=EXIT_USAGE)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ProvisionError(f"--server: invalid port in {server!r}", exit_code=EXIT_USAGE) from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ProvisionError(f"--server: must be only scheme, host, port and path: {server!r}", exit_code=EXIT_USAGE)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body.decode("utf-8", errors="replace")[:300] or "(no details)"
    return detail if isinstance(detail, str) else json.dumps(detail)[:300]


def exchange(server: str, token: str, *, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """POST the token; the server's answer, or :class:`ProvisionError` (refused, unreachable, odd answer)."""
    url = server + PROVISION_PATH
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s)
        url,
        data=json.dumps({"token": token}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
            body = response.read()
    except urllib.error.HTTPError as error:
        detail = _detail(error.read())
        raise ProvisionError(f"{url}: the server refused (HTTP {error.code}): {detail}") from None
    except urllib.error.URLError as error:
        reason = error.reason.strerror if isinstance(error.reason, OSError) and error.reason.strerror else error.reason
        raise ProvisionError(f"cannot reach {server}: {reason}") from None
    except TimeoutError:
        raise ProvisionError(f"cannot reach {server}: no answer within {timeout:.0f}s") from None
    except OSError as error:
        raise ProvisionError(f"cannot reach {server}: {error.strerror or error}") from None
    try:
        answer = json.loads(body)
        mqtt = answer["mqtt"]
        for key in ("url", "username", "password"):
            if not isinstance(mqtt[key], str) or not mqtt[key]:
                raise TypeError(key)
        if not isinstance(answer["gateway_id"], str) or not isinstance(answer["devices"], list):
            raise TypeError("gateway_id")
    except (ValueError, KeyError, TypeError) as error:
        raise ProvisionError(
            f"{url}: not a provisioning answer ({type(error).__name__}: {error}): is this Misto?"
        ) from None
    return dict(answer)


def render_config(answer: dict[str, Any], *, state_dir: Path | None = None, now: datetime | None = None) -> str:
    """The agent's first configuration: YAML, with the registry's devices as comments."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    gateway = answer["gateway_id"]
    lines = [
        f"# Written by `misto-edge provision` at {moment} for gateway {gateway} (token {answer.get('token_id')}).",
        "# The broker password is in mqtt.password (mode 0600); keep both files private.",
        "# Add each device's driver settings under `devices` (docs/configuration.md), then run",
        f"# `misto-edge validate {CONFIG_NAME}` and `misto-edge run {CONFIG_NAME}`.",
    ]
    devices = answer["devices"]
    if devices:
        lines.append("# Devices the registry assigns to this gateway:")
        lines += [f"#   - id: {d.get('id')}  (model {d.get('model_id')}, {d.get('kind')})" for d in devices]
    else:
        lines.append("# The registry assigns no devices to this gateway yet.")
    data: dict[str, Any] = {
        "gateway_id": gateway,
        "broker": {
            "url": answer["mqtt"]["url"],
            "username": answer["mqtt"]["username"],
            "password_file": PASSWORD_NAME,
        },
    }
    if state_dir is not None:
        data["state_dir"] = str(state_dir)
    data["devices"] = []
    return "\n".join(lines) + "\n" + yaml.safe_dump(data, sort_keys=False)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file created with mode 0600, then renamed."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except OSError as error:
        raise ProvisionError(f"{path}: cannot create it: {error.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise ProvisionError(f"{path}: cannot write it: {error.strerror}") from None


def provision(
    server: str, token: str, config_dir: Path, *, force: bool = False, state_dir: Path | None = None
) -> Provisioned:
    """Exchange ``token`` at ``server`` and write the password file and the configuration."""
    base = check_server(server)
    if not token.strip():
        raise ProvisionError("--token: is empty", exit_code=EXIT_USAGE)
    if not config_dir.is_dir():
        raise ProvisionError(f"--config-dir: {config_dir} is not a directory", exit_code=EXIT_USAGE)
    config_path, password_path = config_dir / CONFIG_NAME, config_dir / PASSWORD_NAME
    existing = [str(p) for p in (config_path, password_path) if p.exists()]
    if existing and not force:
        raise ProvisionError(
            f"{' and '.join(existing)} already exist(s): use --force to replace (the token is not spent)",
            exit_code=EXIT_USAGE,
        )
    warnings = []
    parts = urlsplit(base)
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        warnings.append(f"{base} is plain HTTP: the token and the broker password cross the network unencrypted")
    answer = exchange(base, token.strip())
    password = answer["mqtt"]["password"]
    text = render_config(answer, state_dir=state_dir)
    try:  # the server's answer must make a configuration this agent accepts
        settings_from_data(
            yaml.safe_load(text), source="provisioned config", base_dir=config_dir, env={PASSWORD_ENV: password}
        )
    except ConfigError as error:
        raise ProvisionError(f"the server's answer does not make a valid configuration: {error}") from None
    write_private(password_path, password + "\n")
    write_private(config_path, text)
    devices = tuple({k: str(v) for k, v in d.items()} for d in answer["devices"] if isinstance(d, dict))
    return Provisioned(answer["gateway_id"], config_path, password_path, devices, tuple(warnings))


def provision_command(
    server: Annotated[
        str, typer.Option("--server", help="The Misto API, e.g. https://misto.example.org", show_default=False)
    ],
    token: Annotated[
        str, typer.Option("--token", help="The one-time provisioning token from the operator.", show_default=False)
    ],
    config_dir: Annotated[
        Path, typer.Option("--config-dir", help="Where to write gateway.yaml and mqtt.password.")
    ] = DEFAULT_CONFIG_DIR,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="state_dir of the written config (default: the agent's).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing gateway.yaml and mqtt.password.")] = False,
) -> None:
    """Exchange a one-time provisioning token for this gateway's MQTT credentials and first config (files mode 0600)."""
    try:
        done = provision(server, token, config_dir, force=force, state_dir=state_dir)
    except ProvisionError as error:
        typer.echo(f"misto-edge provision: {error.message}", err=True)
        raise typer.Exit(error.exit_code) from None
    for warning in done.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"provisioned gateway {done.gateway_id}")
    typer.echo(f"  wrote {done.password_path} (mode 0600): the broker password")
    typer.echo(f"  wrote {done.config_path} (mode 0600): the agent's configuration, no devices yet")
    if done.devices:
        names = ", ".join(d.get("id", "?") for d in done.devices)
        typer.echo(f"  the registry lists {len(done.devices)} device(s) for it: {names} (add their driver settings)")
    typer.echo(f"next: add the devices to {done.config_path}, then run:")
    typer.echo(f"  misto-edge validate {done.config_path} && misto-edge run {done.config_path}")


def register(app: typer.Typer) -> None:
    """Add ``provision`` to the ``misto-edge`` command."""
    app.command("provision")(provision_command)
