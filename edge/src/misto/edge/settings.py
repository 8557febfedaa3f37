"""The gateway agent's configuration: a YAML file checked at start-up, every error reported at once
with its path (``devices[1].registers[0].type: must be one of ...``).

Secrets: the broker password comes from ``MISTO_BROKER_PASSWORD``, else ``broker.password_file``
(read at start-up), else ``broker.password``. Relative file paths are relative to the config file.
Validators never change their input; resolved values (file contents, absolute paths) are new objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from misto.edge.buffer.settings import BufferSettings
from misto.edge.config_errors import (
    ROOT,
    ConfigIssue,
    ConfigProblem,
    Locator,
    issues_from_validation_error,
    read_yaml_file,
)
from misto.edge.config_model import ConfigModel, Problems, StrictInt
from misto.edge.device_config import DRIVER_NAMES, DeviceSettings
from misto.edge.device_config.modbus import serial_bus_problems
from misto.edge.durations import Duration
from misto.edge.errors import ConfigError
from misto.protocol import topics

PASSWORD_ENV = "MISTO_BROKER_PASSWORD"  # noqa: S105 - the name of the variable, not a secret
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "change_me", "changethis", "password", "secret", "xxx"})
_Problems = Problems
DEFAULT_STATE_DIR = Path("/var/lib/misto")


def _context(info: ValidationInfo) -> tuple[Mapping[str, str], Path]:
    ctx: Mapping[str, Any] = info.context or {}
    return ctx.get("env", os.environ), Path(ctx.get("base_dir", Path.cwd()))


def _shown(path: Path) -> str:
    return f"{str(path)!r}" + ("" if path.is_absolute() else " (relative to the config file)")


def _url_problems(url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        return [f"must start with mqtt:// or mqtts://, not {url!r}"]
    problems = []
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        problems.append(f"{url!r} has an invalid port")
    if not parts.hostname:
        problems.append(f"{url!r} has no host")
    if parts.username or parts.password:
        problems.append("must not contain credentials: use broker.username and broker.password_file")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append(f"{url!r} must be only scheme, host and port")
    return problems


_Model = ConfigModel


class TlsSettings(_Model):
    """TLS for ``mqtts://``. Without ``ca_file`` the system's trusted CAs are used."""

    ca_file: Path | None = None
    certfile: Path | None = Field(default=None, description="Client certificate (with keyfile) for mutual TLS")
    keyfile: Path | None = None

    def problems(self, base: Path) -> tuple[_Problems, TlsSettings]:
        """Problems at ``(field,)``, and a copy with absolute paths (relative ones are from ``base``)."""
        problems: _Problems = []
        if (self.certfile is None) != (self.keyfile is None):
            missing = "keyfile" if self.keyfile is None else "certfile"
            problems.append(((missing,), "certfile and keyfile must be given together"))
        resolved: dict[str, Path] = {}
        for name in ("ca_file", "certfile", "keyfile"):
            path: Path | None = getattr(self, name)
            if path is None:
                continue
            full = path if path.is_absolute() else base / path
            if not full.is_file():
                problems.append(((name,), f"file {_shown(path)} does not exist"))
            resolved[name] = full
        return problems, self.model_copy(update=resolved)


class BrokerSettings(_Model):
    """The MQTT broker the gateway publishes to."""

    url: str = Field(description="mqtt://host:port or mqtts://host:port (TLS)")
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=64, description="Default: the gateway id")
    keepalive: Duration = 60.0
    tls: TlsSettings | None = None
    max_inflight: StrictInt = Field(default=20, ge=1, le=1000, description="QoS 1 messages awaiting PUBACK")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT version; 3.1.1 for brokers without MQTT 5 (e.g. the demo's embedded broker)"
    )
    connect_timeout: Duration = Field(default=10.0, description="How long to wait for the broker's CONNACK")
    reconnect_delay_min: Duration = 1.0
    reconnect_delay_max: Duration = 60.0
    _secret: SecretStr | None = PrivateAttr(default=None)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if problems := _url_problems(url):
            raise ValueError("; ".join(problems))
        return url

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> BrokerSettings:
        # One validator for every check across fields or files, so that all of them are reported together
        # (pydantic runs it only when every field on its own is valid).
        env, base = _context(info)
        problems: _Problems = []
        tls = self.tls
        if tls is not None:
            tls_problems, tls = tls.problems(base)
            problems += [(("tls", *loc), msg) for loc, msg in tls_problems]
        secret, secret_problems = self._find_secret(env, base)
        problems += secret_problems
        if secret and secret.strip().lower() in PLACEHOLDER_SECRETS:
            problems.append((("password",), "is a placeholder; set the real password"))
        if self.username is None and secret:
            problems.append((("username",), "is required when a password is set"))
        if self.username is not None and secret is None and not secret_problems:
            problems.append(
                (("password",), f"is required with a username: set password_file, password or {PASSWORD_ENV}")
            )
        if self.reconnect_delay_max < self.reconnect_delay_min:
            problems.append((("reconnect_delay_max",), "must not be less than reconnect_delay_min"))
        if problems:
            raise ConfigProblem(problems)
        resolved = self.model_copy(update={"tls": tls})
        resolved._secret = SecretStr(secret) if secret else None
        return resolved

    def _find_secret(self, env: Mapping[str, str], base: Path) -> tuple[str | None, _Problems]:
        problems: _Problems = []
        if self.password is not None and self.password_file is not None:
            problems.append((("password_file",), "set either password or password_file, not both"))
        if env.get(PASSWORD_ENV):
            return env[PASSWORD_ENV], problems
        if self.password_file is not None:
            path = self.password_file if self.password_file.is_absolute() else base / self.password_file
            try:
                secret = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                problems.append((("password_file",), f"cannot read {_shown(self.password_file)}: {exc.strerror}"))
                return None, problems
            except UnicodeDecodeError:
                problems.append((("password_file",), f"{_shown(self.password_file)} is not UTF-8 text"))
                return None, problems
            if not secret:
                problems.append((("password_file",), f"{_shown(self.password_file)} is empty"))
            return secret or None, problems
        if self.password is not None:
            secret = self.password.get_secret_value()
            if not secret:
                problems.append((("password",), "must not be empty"))
            return secret or None, problems
        return None, problems

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.use_tls else 1883)

    @property
    def use_tls(self) -> bool:
        return self.scheme == "mqtts"

    def resolved_password(self) -> str | None:
        """The password from the environment, the password file or the config, in that order."""
        return self._secret.get_secret_value() if self._secret else None


class Settings(_Model):
    """The whole gateway configuration file."""

    gateway_id: str = Field(description="Gateway id; also the MQTT username by convention")
    broker: BrokerSettings
    poll_interval: Duration = Field(default=10.0, description="Default poll interval of every device")
    device_backoff_max: Duration = Field(default=300.0, description="Longest wait before retrying a failed device")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    state_dir: Path = Field(default=DEFAULT_STATE_DIR, description="Where the buffer and the state file live")
    state_file: Path | None = Field(default=None, description="For `misto-edge status`; default <state_dir>/state.json")
    state_interval: Duration = Field(default=5.0, description="How often the state file is rewritten")
    health_interval: Duration = Field(default=60.0, description="How often gateway health is published")
    buffer: BufferSettings = BufferSettings()
    devices: tuple[DeviceSettings, ...] = ()

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, value: str) -> str:
        return topics.check_gateway_id(value)

    @model_validator(mode="after")
    def _unique_devices(self) -> Settings:
        first: dict[str, int] = {}
        problems: _Problems = []
        for i, device in enumerate(self.devices):
            if device.id in first:
                where = f"devices[{first[device.id]}]"
                problems.append((("devices", i, "id"), f"duplicate device id {device.id!r} (also {where})"))
            first.setdefault(device.id, i)
        problems += serial_bus_problems(self.devices)
        if problems:
            raise ConfigProblem(problems)
        return self

    @model_validator(mode="after")
    def _resolve_paths(self, info: ValidationInfo) -> Settings:
        _, base = _context(info)
        state_dir = self.state_dir if self.state_dir.is_absolute() else base / self.state_dir

        def under_state_dir(path: Path | None, default: str) -> Path:
            if path is None:
                return state_dir / default
            return path if path.is_absolute() else base / path

        buffer = self.buffer.model_copy(update={"path": under_state_dir(self.buffer.path, "buffer.db")})
        state_file = under_state_dir(self.state_file, "state.json")
        return self.model_copy(update={"state_dir": state_dir, "state_file": state_file, "buffer": buffer})

    @property
    def buffer_path(self) -> Path:
        """The SQLite buffer's file (absolute)."""
        assert self.buffer.path is not None  # set by _resolve_paths
        return self.buffer.path

    @property
    def state_file_path(self) -> Path:
        """The state file written for ``misto-edge status`` (absolute)."""
        assert self.state_file is not None  # set by _resolve_paths
        return self.state_file

    @property
    def client_id(self) -> str:
        return self.broker.client_id or self.gateway_id

    def interval_of(self, device: DeviceSettings) -> float:
        return device.poll_interval or self.poll_interval

    def register_count(self) -> int:
        """Readings per poll of every device together (registers, frame fields, counts)."""
        return sum(device.points() for device in self.devices)


def settings_from_data(
    data: object,
    *,
    source: str | None = None,
    locate: Locator | None = None,
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Validate already-parsed config data; :class:`ConfigError` lists every problem."""
    if data is None:
        raise ConfigError([ConfigIssue(ROOT, "the configuration is empty")], source=source)
    context = {"env": os.environ if env is None else env, "base_dir": base_dir or Path.cwd()}
    try:
        return Settings.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(issues_from_validation_error(exc, locate, union_tags=DRIVER_NAMES), source=source) from None


def load_settings(path: Path, *, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the YAML config at ``path``; :class:`ConfigError` lists every problem."""
    document = read_yaml_file(path)
    return settings_from_data(
        document.data, source=str(path), locate=document.locate, base_dir=path.resolve().parent, env=env
    )
