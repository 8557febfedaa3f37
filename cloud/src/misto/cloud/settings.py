"""Typed settings of the cloud service, checked at start-up with every error reported at once.

Sources, highest priority first: keyword overrides (the CLI's flags), environment variables
(``MISTO_`` prefix, ``__`` between levels: ``MISTO_BROKER__PASSWORD``), an optional YAML file,
then the defaults below. ``config/misto-cloud.sample.yaml`` documents every key.

Relative paths (``store.path``, ``control.path``, ``*_file``) are relative to the working directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from misto.cloud.errors import ConfigError, SettingError
from misto.protocol import topics

#: Values that a sample or a tutorial puts where a secret goes; refused everywhere.
PLACEHOLDER_SECRETS = frozenset(
    {
        "changeme",
        "changethis",
        "changeit",
        "replaceme",
        "password",
        "passw0rd",
        "secret",
        "default",
        "example",
        "admin",
        "test",
        "todo",
        "xxx",
        "123456",
        "12345678",
    }
)
MIN_TOKEN_LENGTH = 16
DEFAULT_MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CONTROL_DB_NAME = "misto-control.db"
REGISTRY_DB_NAME = "misto-registry.db"
REGISTRY_SCHEMES = ("sqlite", "postgresql+psycopg")


def check_secret(value: str, what: str) -> str:
    """Return ``value`` if it can be a real secret; raise :class:`ValueError` saying why not.

    The message never repeats the secret itself.
    """
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    squashed = "".join(ch for ch in value.lower() if ch.isalnum())
    if squashed in PLACEHOLDER_SECRETS or "changeme" in squashed or (value.startswith("<") and value.endswith(">")):
        raise ValueError(f"{what} is a placeholder value; set a real secret")
    return value


def read_secret_file(path: Path) -> str:
    """The secret in ``path``: its text without the trailing newline(s)."""
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def _check_secret_file(path: Path | None, what: str) -> Path | None:
    if path is None:
        return None
    try:
        secret = read_secret_file(path)
    except FileNotFoundError:
        raise ValueError(f"file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc}") from None
    check_secret(secret, f"the {what} in {str(path)!r}")
    return path


def _resolve_secret(value: SecretStr | None, file: Path | None) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if file is not None:
        return read_secret_file(file)
    return None


def _password_value(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        check_secret(value.get_secret_value(), "password")
    return value


Password = Annotated[SecretStr | None, AfterValidator(_password_value)]
"""A password given inline: refused when empty or a placeholder."""
PasswordFile = Annotated[Path | None, AfterValidator(lambda path: _check_secret_file(path, "password"))]
"""A file holding a password: it must exist, be readable and hold a real secret."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttVersion(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


class BrokerSettings(_Section):
    """The MQTT broker the ingester subscribes to."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: Password = None
    password_file: PasswordFile = None
    ca_file: Path | None = None
    client_id: str = Field(default="misto-cloud-ingester", pattern=_NAME_PATTERN)
    share_group: str | None = None
    protocol: MqttVersion = MqttVersion.V5
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, le=2**32 - 1)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=0.5, gt=0, le=60)
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_MQTT_PORTS:
            raise ValueError(f"must start with mqtt:// or mqtts:// (mqtts for TLS), got {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("put credentials in broker.username and broker.password, not in the URL")
        if not parts.hostname:
            raise ValueError(f"has no host: {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"has an invalid port: {url!r}") from None
        if port == 0:
            raise ValueError(f"port must be 1-65535: {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"must be just mqtt[s]://host:port, got {url!r}")
        return url

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist")
        return value

    @field_validator("share_group")
    @classmethod
    def _share_group(cls, value: str | None) -> str | None:
        if value is not None:
            topics.subscription(topics.Channel.TELEMETRY, share_group=value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either password or password_file, not both")
        has_password = self.password is not None or self.password_file is not None
        if self.username is not None and not has_password:
            raise ValueError("password (or password_file) is required when username is set")
        if self.username is None and has_password:
            raise ValueError("username is required when a password is set")
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is only used with an mqtts:// url")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or DEFAULT_MQTT_PORTS[parts.scheme]

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def password_value(self) -> str | None:
        """The password from ``password`` or ``password_file`` (read now)."""
        return _resolve_secret(self.password, self.password_file)


class DeviceOwnershipMode(StrEnum):
    """Whether a gateway may publish readings for a device that another gateway published first."""

    FIRST_GATEWAY = "first_gateway"  # a device belongs to the first gateway heard publishing it
    REGISTRY = "registry"  # a device belongs to its gateway in the registry (docs/provisioning.md)
    OFF = "off"  # any gateway may publish for any device


class UnregisteredDevices(StrEnum):
    """With ``device_ownership: registry``, what happens to a device the registry does not list."""

    FIRST_GATEWAY = "first_gateway"  # kept to the first gateway heard publishing it, until registered
    REFUSE = "refuse"  # its readings are dead-lettered until it is registered


class ValidationSettings(_Section):
    """Readings refused at the door (each dead-lettered with its reason, counted per gateway)."""

    max_future_s: int = Field(default=300, ge=0, le=7 * 86400)
    # Gateways buffer up to a week (edge buffer.max_age) and the broker keeps an ingester's
    # session a week (broker.session_expiry_s): a reading can legitimately arrive two weeks late.
    max_age_days: float = Field(default=14.0, gt=0, le=3650)
    device_ownership: DeviceOwnershipMode = DeviceOwnershipMode.FIRST_GATEWAY
    unregistered_devices: UnregisteredDevices = UnregisteredDevices.FIRST_GATEWAY
    registry_refresh_s: float = Field(default=30.0, ge=1, le=86400)  # re-read device owners this often


class IngestSettings(_Section):
    """How received messages are buffered, batched, checked and stored."""

    queue_size: int = Field(default=1000, ge=1, le=100_000)
    batch_max_messages: int = Field(default=500, ge=1, le=100_000)
    batch_max_readings: int = Field(default=5000, ge=1, le=1_000_000)
    batch_max_wait_ms: float = Field(default=50.0, ge=0, le=10_000)
    shutdown_drain_s: float = Field(default=10.0, ge=0, le=300)
    store_retry_max_s: float = Field(default=30.0, gt=0, le=3600)
    snapshot_interval_s: float = Field(default=10.0, ge=0, le=3600)  # 0: no misto_ingest snapshots
    validation: ValidationSettings = Field(default_factory=ValidationSettings)

    @model_validator(mode="after")
    def _batch_fits_the_queue(self) -> Self:
        if self.batch_max_messages > self.queue_size:
            raise ValueError(
                f"batch_max_messages ({self.batch_max_messages}) must not exceed queue_size ({self.queue_size}): "
                "at most queue_size messages are unacknowledged at a time"
            )
        return self


class SqliteStoreSettings(_Section):
    """The embedded SQLite store (``backend: sqlite``, the default)."""

    backend: Literal["sqlite"] = "sqlite"
    path: Path = Path("./misto.db")
    dedup_retention_days: int = Field(default=30, ge=1, le=3650)
    raw_retention_days: int = Field(default=30, ge=1, le=36500)
    rollup_1m_retention_days: int = Field(default=400, ge=1, le=36500)
    rollup_1h_retention_days: int | None = Field(default=None, ge=1, le=36500)  # None: kept forever

    @model_validator(mode="after")
    def _coarser_kept_longer(self) -> Self:
        """Queries fall back to coarser data where finer data is gone, so coarser is kept longer."""
        hour = self.rollup_1h_retention_days
        if self.rollup_1m_retention_days < self.raw_retention_days:
            raise ValueError("rollup_1m_retention_days must be at least raw_retention_days")
        if hour is not None and hour < self.rollup_1m_retention_days:
            raise ValueError("rollup_1h_retention_days must be at least rollup_1m_retention_days (or null: forever)")
        return self

    @property
    def location(self) -> str:
        return str(self.path)


class InfluxSetup(StrEnum):
    """What the InfluxDB store creates at open."""

    CREATE = "create"  # database, retention policies and continuous queries if missing (InfluxDB 1.x)
    EXISTING = "existing"  # nothing: an operator made them (InfluxDB 2.x buckets + DBRP mappings, 3.x)


class InfluxRollups(StrEnum):
    """Where the 1-minute and 1-hour rollups of the InfluxDB store come from."""

    CONTINUOUS_QUERIES = "continuous_queries"  # InfluxDB 1.x continuous queries, late data rolled up by the store
    EXTERNAL = "external"  # retention policies rollup_1m / rollup_1h filled by something else (2.x tasks)
    NONE = "none"  # no rollups: every query reads raw data (e.g. InfluxDB 3 Core)


class Compression(StrEnum):
    GZIP = "gzip"
    NONE = "none"


_INFLUX_SCHEMES = ("http", "https")
_DATABASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class InfluxStoreSettings(_Section):
    """InfluxDB through its v1 HTTP API (1.x; 2.x and 3.x via their v1 endpoints): docs/influxdb.md."""

    backend: Literal["influx"] = "influx"
    url: str = "http://127.0.0.1:8086"
    database: str = Field(default="misto", pattern=_DATABASE_PATTERN)
    username: str | None = None
    password: Password = None
    password_file: PasswordFile = None
    token: SecretStr | None = None
    token_file: Path | None = None
    setup: InfluxSetup = InfluxSetup.CREATE
    rollups: InfluxRollups = InfluxRollups.CONTINUOUS_QUERIES
    raw_retention_days: int | None = Field(default=30, ge=1, le=36500)  # None: kept forever
    rollup_1m_retention_days: int | None = Field(default=400, ge=1, le=36500)
    rollup_1h_retention_days: int | None = Field(default=None, ge=1, le=36500)
    rollup_every_s: int = Field(default=60, ge=1, le=3600)
    rollup_lateness_s: int = Field(default=120, ge=0, le=86400)
    batch_points: int = Field(default=5000, ge=1, le=1_000_000)
    max_concurrent_writes: int = Field(default=4, ge=1, le=64)
    compression: Compression = Compression.GZIP
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    retry_initial_s: float = Field(default=0.2, gt=0, le=60)
    retry_max_s: float = Field(default=5.0, gt=0, le=600)
    retry_deadline_s: float = Field(default=30.0, gt=0, le=3600)
    dedup_cache_size: int = Field(default=100_000, ge=0, le=10_000_000)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in _INFLUX_SCHEMES:
            raise ValueError(f"must start with http:// or https://, got {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("put credentials in store.username/password or store.token, not in the URL")
        if not parts.hostname:
            raise ValueError(f"has no host: {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"must have no query or fragment: {url!r}")
        return url.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_secret(value.get_secret_value(), "token")
        return value

    @field_validator("token_file")
    @classmethod
    def _token_file(cls, value: Path | None) -> Path | None:
        return _check_secret_file(value, "token")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either password or password_file, not both")
        if self.token is not None and self.token_file is not None:
            raise ValueError("set either token or token_file, not both")
        has_password = self.password is not None or self.password_file is not None
        has_token = self.token is not None or self.token_file is not None
        if self.username is not None and not has_password:
            raise ValueError("password (or password_file) is required when username is set")
        if self.username is None and has_password:
            raise ValueError("username is required when a password is set")
        if has_token and self.username is not None:
            raise ValueError("set either username/password (InfluxDB 1.x) or token (2.x, 3.x), not both")
        if self.retry_initial_s > self.retry_max_s:
            raise ValueError("retry_initial_s must not exceed retry_max_s")
        forever = 10**9
        raw, minute, hour = (
            d if d is not None else forever
            for d in (self.raw_retention_days, self.rollup_1m_retention_days, self.rollup_1h_retention_days)
        )
        if minute < raw:
            raise ValueError("rollup_1m_retention_days must be at least raw_retention_days")
        if hour < minute:
            raise ValueError("rollup_1h_retention_days must be at least rollup_1m_retention_days (or null: forever)")
        return self

    @property
    def location(self) -> str:
        return f"{self.url} database {self.database}"

    def password_value(self) -> str | None:
        return _resolve_secret(self.password, self.password_file)

    def token_value(self) -> str | None:
        return _resolve_secret(self.token, self.token_file)


def _store_backend(value: Any) -> str:
    """The ``backend`` of a store section; a section without one is the embedded SQLite store."""
    if isinstance(value, Mapping):
        return str(value.get("backend", "sqlite"))
    return str(getattr(value, "backend", "sqlite"))


StoreSettings = Annotated[
    Annotated[SqliteStoreSettings, Tag("sqlite")] | Annotated[InfluxStoreSettings, Tag("influx")],
    Discriminator(_store_backend),
]
"""The ``store`` section: ``backend: sqlite`` (default) or ``backend: influx``."""


class ControlSettings(_Section):
    """Remote configuration and commands: where their records live, how they are published."""

    path: Path | None = None  # None: misto-control.db next to store.path
    publish_timeout_s: float = Field(default=10.0, gt=0, le=120)
    command_expiry_s: int = Field(default=600, ge=1, le=7 * 86400)

    def database(self, store: SqliteStoreSettings | InfluxStoreSettings) -> Path:
        """The control database: ``path``, or ``misto-control.db`` in the directory of the SQLite
        store (in the working directory with the InfluxDB store)."""
        if self.path is not None:
            return self.path
        if isinstance(store, InfluxStoreSettings):
            return Path(CONTROL_DB_NAME)
        return store.path.with_name(CONTROL_DB_NAME)


class BrokerFilesSettings(_Section):
    """Mosquitto's password and ACL files, kept in step with the registry by the service and
    reloaded with SIGHUP (docs/provisioning.md): the broker's pid given, read from its pid file,
    or neither (files written only; the broker reads them when it starts)."""

    passwd: Path
    acl: Path
    reload_pid_file: Path | None = None
    reload_pid: int | None = Field(default=None, ge=2)
    interval_s: float = Field(default=5.0, ge=0.5, le=3600)  # also checked at once after each change

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reload_pid is not None and self.reload_pid_file is not None:
            raise ValueError("set reload_pid or reload_pid_file, not both")
        if self.passwd.resolve() == self.acl.resolve():
            raise ValueError("passwd and acl must be different files")
        for name in ("passwd", "acl"):
            if not getattr(self, name).parent.is_dir():
                raise ValueError(f"{name}: directory {str(getattr(self, name).parent)!r} does not exist")
        return self


class ProvisioningSettings(_Section):
    """Gateway provisioning (docs/provisioning.md): what a provisioned gateway is told, how long a
    token lives, how many failed exchanges an address may make."""

    broker_url: str | None = None  # the broker as gateways reach it; None: broker.url
    token_ttl_s: int = Field(default=24 * 3600, ge=60, le=30 * 86400)
    max_failures: int = Field(default=10, ge=1, le=10_000)  # per client address and window, then 429
    failure_window_s: float = Field(default=600.0, ge=1, le=86400)

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, url: str | None) -> str | None:
        if url is not None:
            try:
                BrokerSettings(url=url)
            except ValidationError as exc:
                raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return url


class AssetStatusSettings(_Section):
    """When a device or gateway counts as online, stale or offline (docs/registry.md#device-status)."""

    online_within_s: int = Field(default=300, ge=1, le=7 * 86400)  # last reading at most this old: online
    stale_within_s: int = Field(default=3600, ge=1, le=30 * 86400)  # then stale up to this age, then offline

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.stale_within_s < self.online_within_s:
            raise ValueError("stale_within_s must be at least online_within_s")
        return self


class RegistrySettings(_Section):
    """The asset registry (device models, gateways, devices, broker accounts): docs/registry.md."""

    url: str | None = None  # None: sqlite:///misto-registry.db next to store.path
    status: AssetStatusSettings = Field(default_factory=AssetStatusSettings)
    broker_files: BrokerFilesSettings | None = None  # None: written only by `misto-cloud broker-files`
    provisioning: ProvisioningSettings = Field(default_factory=ProvisioningSettings)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        scheme, separator, rest = url.partition("://")
        if not separator or scheme not in REGISTRY_SCHEMES:
            raise ValueError(
                f"must start with sqlite:/// or postgresql+psycopg:// (PostgreSQL with PostGIS), got {scheme!r}"
            )
        if scheme == "sqlite":
            if not rest.startswith("/") or rest == "/":
                raise ValueError("must be sqlite:///PATH (three slashes, then the file's path)")
            return url
        parts = urlsplit(url)
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError("has no host: postgresql+psycopg://USER:PASSWORD@HOST[:PORT]/DATABASE")
        if parts.password is not None:
            check_secret(unquote(parts.password), "the password in the URL")
        return url

    def database_url(self, store: SqliteStoreSettings | InfluxStoreSettings) -> str:
        """``url``, or ``sqlite:///`` + ``misto-registry.db`` in the directory of the SQLite store
        (in the working directory with the InfluxDB store)."""
        if self.url is not None:
            return self.url
        if isinstance(store, InfluxStoreSettings):
            return f"sqlite:///{REGISTRY_DB_NAME}"
        return f"sqlite:///{store.path.with_name(REGISTRY_DB_NAME)}"

    def display_url(self, store: SqliteStoreSettings | InfluxStoreSettings) -> str:
        """The database URL with any password masked, for logs and ``check-config``."""
        url = self.database_url(store)
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()


class PublicDevices(StrEnum):
    """Whose telemetry the public read endpoints show (misto.cloud.api.visibility)."""

    NOT_PRIVATE = "not_private"  # every device but those the registry marks private
    REGISTERED_PUBLIC = "registered_public"  # only devices registered and marked public


class ApiSettings(_Section):
    """The HTTP API and the public page."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    operator_token: SecretStr | None = None
    operator_token_file: Path | None = None
    # A read-only token for Prometheus' scrapes of /metrics (which also accepts the operator token).
    metrics_token: SecretStr | None = None
    metrics_token_file: Path | None = None
    max_series_windows: int = Field(default=10_000, ge=1, le=1_000_000)
    # Whose readings anonymous callers, citizens and partners see on /api/v1/devices,
    # /readings/latest and /series (staff see all): not_private or registered_public.
    public_devices: PublicDevices = PublicDevices.NOT_PRIVATE
    # Signs people's sign-in tokens (JWT, HS256); unset: a random secret per process (tokens die
    # at a restart). At least 32 characters (e.g. `openssl rand -hex 32`).
    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path | None = None
    jwt_expiry_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # The public map's base tiles: a Leaflet URL template ({z}/{x}/{y}, {s} for subdomains), http(s)
    # or a path on this server; empty: no tiles, the city's layers alone. The page's
    # Content-Security-Policy admits this origin for images. Attribution: HTML, shown on the map.
    map_tiles_url: str = Field(default="https://tile.openstreetmap.org/{z}/{x}/{y}.png", max_length=500)
    map_attribution: str = Field(
        default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        max_length=1000,
    )

    @field_validator("map_tiles_url")
    @classmethod
    def _tiles_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        where = (parts.scheme in {"http", "https"} and parts.netloc) or (not parts.netloc and value.startswith("/"))
        if not where or any(c in value for c in " \t\r\n;,'\"<>\\`") or "@" in parts.netloc:
            raise ValueError("must be empty, an http(s) URL or a path on this server (no spaces, quotes, ; or ,)")
        missing = [name for name in ("{z}", "{x}", "{y}") if name not in value]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}: a tile URL template names {{z}}, {{x}} and {{y}}")
        return value

    @field_validator("operator_token", "metrics_token", "jwt_secret")
    @classmethod
    def _token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            _check_token(value.get_secret_value(), str(info.field_name))
        return value

    @field_validator("operator_token_file", "metrics_token_file", "jwt_secret_file")
    @classmethod
    def _token_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        what = str(info.field_name).removesuffix("_file").replace("_token", " token").replace("_secret", " secret")
        if _check_secret_file(value, what) is not None:
            assert value is not None
            _check_token(read_secret_file(value), f"the {what} in {str(value)!r}")
        return value

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        for name in ("operator_token", "metrics_token", "jwt_secret"):
            if getattr(self, name) is not None and getattr(self, f"{name}_file") is not None:
                raise ValueError(f"set either {name} or {name}_file, not both")
        jwt_secret = self.jwt_secret_value()
        if jwt_secret is not None and len(jwt_secret) < 2 * MIN_TOKEN_LENGTH:  # HS256: 256 bits at least
            raise ValueError(f"jwt_secret must be at least {2 * MIN_TOKEN_LENGTH} characters (`openssl rand -hex 32`)")
        return self

    def operator_token_value(self) -> str | None:
        return _resolve_secret(self.operator_token, self.operator_token_file)

    def metrics_token_value(self) -> str | None:
        return _resolve_secret(self.metrics_token, self.metrics_token_file)

    def jwt_secret_value(self) -> str | None:
        return _resolve_secret(self.jwt_secret, self.jwt_secret_file)


def _check_token(token: str, what: str) -> None:
    check_secret(token, what)
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"{what} must be at least {MIN_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 24`)")


class BrokerRole(StrEnum):
    """What an embedded-broker account may do (see :mod:`misto.cloud.embedded_broker`)."""

    GATEWAY = "gateway"  # publish its own edge→cloud topics, read its own config/cmd; username = gateway id
    INGESTER = "ingester"  # read every gateway's edge→cloud topics, publish config/cmd
    ADMIN = "admin"  # read and write everything under misto/


class EmbeddedUser(_Section):
    username: str = Field(pattern=_NAME_PATTERN)
    password: Password = None
    password_file: PasswordFile = None
    role: BrokerRole = BrokerRole.GATEWAY

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set exactly one of password or password_file")
        if self.role is BrokerRole.GATEWAY:
            topics.check_gateway_id(self.username)
        return self

    def password_value(self) -> str:
        secret = _resolve_secret(self.password, self.password_file)
        assert secret is not None
        return secret


class EmbeddedBrokerSettings(_Section):
    """An in-process MQTT 3.1.1 broker for demos and single-machine installs."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=0, le=65535)
    users: list[EmbeddedUser] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[EmbeddedUser]) -> list[EmbeddedUser]:
        seen: dict[str, int] = {}
        for index, user in enumerate(users):
            if user.username in seen:
                first = seen[user.username]
                raise ValueError(f"username {user.username!r} appears twice (users[{first}] and users[{index}])")
            seen[user.username] = index
        return users


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_FILE_DATA: ContextVar[Mapping[str, Any] | None] = ContextVar("misto_cloud_file_data", default=None)


class CloudSettings(BaseSettings):
    """Everything ``misto-cloud serve`` needs. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="MISTO_", env_nested_delimiter="__", extra="forbid", frozen=True)

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=SqliteStoreSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    embedded_broker: EmbeddedBrokerSettings = Field(default_factory=EmbeddedBrokerSettings)
    log_level: LogLevel = LogLevel.INFO

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_source = InitSettingsSource(settings_cls, init_kwargs=dict(_FILE_DATA.get() or {}))
        return (init_settings, env_settings, file_source)

    @model_validator(mode="after")
    def _separate_databases(self) -> Self:
        store = self.store
        if isinstance(store, SqliteStoreSettings) and self.control.database(store).resolve() == store.path.resolve():
            raise ValueError("control.path must differ from store.path: the control database is a file of its own")
        return self

    @model_validator(mode="after")
    def _separate_registry(self) -> Self:
        url = self.registry.url
        if url is None or not url.startswith("sqlite:///"):
            return self
        path = Path(url.removeprefix("sqlite:///")).resolve()
        others = {"store.path": self.store.path} if isinstance(self.store, SqliteStoreSettings) else {}
        others["control.path"] = self.control.database(self.store)
        for key, other in others.items():
            if path == other.resolve():
                raise ValueError(
                    f"registry.url must name a file other than {key}: the registry is a database of its own"
                )
        return self

    @model_validator(mode="after")
    def _embedded_broker_limits(self) -> Self:
        if self.embedded_broker.enabled and self.broker.share_group is not None:
            raise ValueError(
                "broker.share_group needs MQTT 5 shared subscriptions, which the embedded broker "
                "(MQTT 3.1.1) lacks: unset broker.share_group or disable embedded_broker"
            )
        return self


def load_settings(config_file: Path | None = None, *, overrides: Mapping[str, Any] | None = None) -> CloudSettings:
    """Settings from ``overrides``, the environment and ``config_file``; :class:`ConfigError` lists every problem."""
    source = str(config_file) if config_file is not None else "environment"
    data = read_config_file(config_file) if config_file is not None else {}
    token = _FILE_DATA.set(data)
    try:
        return CloudSettings(**dict(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(setting_errors(exc), source=source) from None
    finally:
        _FILE_DATA.reset(token)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([SettingError(str(path), "config file does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([SettingError(str(path), f"cannot read config file: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([SettingError(where, f"invalid YAML: {problem}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(key, str) for key in data):
        raise ConfigError([SettingError(str(path), "the top level must be a mapping of section names")])
    return data


def setting_errors(exc: ValidationError) -> list[SettingError]:
    return [_setting_error(err["loc"], err["type"], err["msg"], err.get("ctx")) for err in exc.errors()]


def _setting_error(loc: tuple[int | str, ...], kind: str, message: str, ctx: Mapping[str, Any] | None) -> SettingError:
    if kind == "union_tag_invalid" and loc == ("store",):
        got = (ctx or {}).get("tag")
        return SettingError("store.backend", f"must be 'sqlite' or 'influx', got {got!r}")
    return SettingError(_loc_path(_untagged(loc)), _message(kind, message))


def _untagged(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """``store.influx.url`` -> ``store.url``: the store backend's tag is not a key of the file."""
    if len(loc) > 1 and loc[0] == "store" and loc[1] in ("sqlite", "influx"):
        return (loc[0], *loc[2:])
    return loc


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(settings)"


def _message(kind: str, message: str) -> str:
    if kind == "extra_forbidden":
        return "unknown key (check its spelling against config/misto-cloud.sample.yaml)"
    if kind == "missing":
        return "required"
    if kind == "string_pattern_mismatch" and _NAME_PATTERN in message:
        return "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
