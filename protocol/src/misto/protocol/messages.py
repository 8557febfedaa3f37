"""Message types of schema version 1. Frozen msgspec structs: decoding is strict
(unknown fields, wrong types and non-UTC-capable timestamps are errors) and fast.

Every telemetry message has a unique id ``<gateway>:<boot>:<seq>``: ``boot`` is fixed for the
life of one agent process, ``seq`` increases by one per message within it. The ingester drops
a message whose id it has already stored, so redelivery never double counts.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from misto.protocol.topics import GATEWAY_ID_PATTERN

SCHEMA_VERSION = 1
MAX_READINGS = 10_000

GatewayId = Annotated[str, msgspec.Meta(pattern=GATEWAY_ID_PATTERN, description="Gateway id")]
DeviceId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="Device id, unique within the city",
    ),
]
MetricName = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$", description="Metric from the vocabulary")
]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 time with offset; stored as UTC")]
Finite = Annotated[float, msgspec.Meta(description="Finite number")]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


class Reading(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One value of one metric of one device at one instant."""

    device: DeviceId
    metric: MetricName
    value: Finite
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    ts: UtcTime

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ValueError(f"value must be a finite number, got {self.value}")
        msgspec.structs.force_setattr(self, "ts", _utc(self.ts))


class Telemetry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A batch of readings from one gateway: one message per poll cycle."""

    schema: Literal[1]
    gateway: GatewayId
    boot: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Agent boot id")]
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    sent_at: UtcTime
    readings: Annotated[list[Reading], msgspec.Meta(min_length=1, max_length=MAX_READINGS)]

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "sent_at", _utc(self.sent_at))

    @property
    def message_id(self) -> str:
        return f"{self.gateway}:{self.boot}:{self.seq}"


class GatewayState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Status(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Retained on ``status``; the agent's last will publishes ``state=offline``."""

    schema: Literal[1]
    gateway: GatewayId
    state: GatewayState
    boot: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    at: UtcTime
    agent_version: str = ""


Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
ErrorKind = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Error kind, e.g. timeout, connection, crc")
]
MAX_HEALTH_DEVICES = 500


class DeviceState(StrEnum):
    STARTING = "starting"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


class DeviceHealth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Poll counters of one device since the agent started (``boot``)."""

    device: DeviceId
    state: DeviceState
    polls: Count
    failures: Count
    readings: Count
    suppressed: Annotated[int, msgspec.Meta(ge=0, description="Readings not sent: unchanged (report by exception)")]
    last_latency_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    last_success_at: UtcTime | None = None
    last_error: ErrorKind | None = None
    last_error_at: UtcTime | None = None
    errors: dict[ErrorKind, Count] = {}
    counters: Annotated[
        dict[ErrorKind, Count],
        msgspec.Meta(description="The driver's own counters, e.g. requests, retries, crc_errors, exception_2"),
    ] = {}

    def __post_init__(self) -> None:
        for name in ("last_success_at", "last_error_at"):
            value = getattr(self, name)
            if value is not None:
                msgspec.structs.force_setattr(self, name, _utc(value))


class BufferHealth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The store-and-forward buffer. Counters are since ``boot``; ``recovered`` messages were found on
    disk at start, so ``recovered + added == sent + rejected + dropped + depth``."""

    kind: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    depth: Count
    bytes: Count
    oldest_age_s: Seconds | None
    recovered: Count
    added: Count
    sent: Count
    rejected: Count
    dropped: Count
    dropped_readings: Count


class LinkHealth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The MQTT link to the broker."""

    connected: bool
    connects: Count
    connect_failures: Count
    disconnects: Count
    published: Count
    acknowledged: Count


class Health(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """On ``health`` every ``health_interval``: the gateway's own metrics. Counters are cumulative since
    ``boot``, so a missed message loses resolution, never counts."""

    schema: Literal[1]
    gateway: GatewayId
    boot: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    at: UtcTime
    uptime_s: Seconds
    cpu_s: Annotated[Seconds, msgspec.Meta(description="CPU time (user + system) of the agent process")]
    rss_bytes: Count | None
    buffer: BufferHealth
    link: LinkHealth
    devices: Annotated[list[DeviceHealth], msgspec.Meta(max_length=MAX_HEALTH_DEVICES)]
    errors: dict[ErrorKind, Count] = {}
    agent_version: str = ""

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "at", _utc(self.at))


class ConfigUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Retained on ``config``: the gateway's desired configuration, versioned."""

    schema: Literal[1]
    gateway: GatewayId
    version: Annotated[int, msgspec.Meta(ge=1)]
    config: dict[str, Any]


class Command(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """On ``cmd``: an action for the agent, answered by an :class:`Ack` with the same ``id``."""

    schema: Literal[1]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    action: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    args: dict[str, Any] = {}


class AckResult(StrEnum):
    OK = "ok"
    ERROR = "error"


class Ack(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """On ``ack``: the result of a command or of applying a config version."""

    schema: Literal[1]
    gateway: GatewayId
    ref: Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="Command id or config:<version>")]
    result: AckResult
    at: UtcTime
    detail: str = ""
