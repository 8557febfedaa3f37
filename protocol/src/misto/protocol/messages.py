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
