"""Request and response models of the HTTP API: the public shape, kept apart from the records of
the store and of the control repository."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from misto.cloud.control.checks import ACTIONS, MAX_VERSION


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class MetricReading(_Out):
    metric: str = Field(examples=["pm25"])
    value: float = Field(examples=[12.3])
    unit: str = Field(examples=["ug/m3"])
    ts: datetime


class Device(_Out):
    device: str = Field(examples=["aq-centre-01"])
    gateway: str = Field(examples=["gw-kherson-001"])
    last_seen: datetime = Field(description="Time of the device's newest reading")
    readings: list[MetricReading] = Field(description="The latest reading of each metric")


class Reading(_Out):
    device: str
    metric: str
    value: float
    unit: str
    ts: datetime
    gateway: str


class Window(_Out):
    start: datetime = Field(description="Start of the window; windows are aligned to the Unix epoch")
    mean: float
    min: float
    max: float
    count: int
    last: float = Field(description="The newest reading in the window")


class Series(_Out):
    device: str
    metric: str
    unit: str
    gateway: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    every_s: float = Field(description="Window length in seconds")
    resolution: Literal["raw", "1m", "1h"] = Field(
        description="The data the windows were computed from: raw readings or 1-minute / 1-hour rollups"
    )
    windows: list[Window] = Field(description="Windows holding at least one reading, oldest first")


class SeriesInfo(_Out):
    device: str = Field(examples=["aq-centre-01"])
    metric: str = Field(examples=["pm25"])
    unit: str = Field(examples=["ug/m3"])
    gateway: str = Field(examples=["gw-kherson-001"])
    first: datetime = Field(description="Time of the series' oldest reading still kept")
    last: datetime = Field(description="Time of its newest reading")


class BufferSummary(_Out):
    depth: int = Field(description="Messages waiting in the gateway's store-and-forward buffer")
    oldest_age_s: float | None = Field(description="Age of the oldest of them; None when the buffer is empty")
    dropped: int = Field(description="Messages the buffer dropped (full or expired) since the agent started")


class DeviceCounts(_Out):
    ok: int = Field(description="Devices answering (state available)")
    failing: int = Field(description="Devices not answering (state unavailable)")
    starting: int = Field(description="Devices not polled yet")


class HealthSummary(_Out):
    """The gist of the gateway's newest health message; the whole of it: ``.../{gateway}/health``."""

    at: datetime = Field(description="The gateway's time of the message")
    received_at: datetime = Field(description="When the cloud received it")
    boot: str
    uptime_s: float = Field(description="Seconds since the agent started")
    cpu_s: float = Field(description="CPU seconds (user + system) of the agent process")
    rss_bytes: int | None = Field(description="Resident memory of the agent process; None where unknown")
    buffer: BufferSummary
    devices: DeviceCounts


class Gateway(_Out):
    gateway: str
    state: Literal["online", "offline"] | None = Field(description="None until a status message arrives")
    boot: str | None
    agent_version: str | None
    status_at: datetime | None = Field(description="The gateway's time of its newest status message")
    last_seen: datetime = Field(description="When the cloud last heard from the gateway")
    health: HealthSummary | None = Field(description="From the newest health message; None until one arrives")


class GatewayHealth(_Out):
    gateway: str
    received_at: datetime = Field(description="When the cloud received the message")
    health: dict[str, Any] = Field(
        description="The gateway's newest health message, whole (misto.protocol Health, schema 1: "
        "protocol/src/misto/protocol/schema/health-v1.schema.json)"
    )


class DeadLetter(_Out):
    id: int
    received_at: datetime
    topic: str
    gateway: str | None
    kind: str = Field(examples=["vocabulary"])
    reason: str
    field: str | None = Field(examples=["$.readings[2].unit"])
    message_id: str | None
    payload: str = Field(description="The raw payload: text if it is UTF-8, else base64")
    payload_encoding: Literal["utf-8", "base64"]
    payload_bytes: int


class StoreCounts(_Out):
    series: int
    readings: int
    messages: int
    dead_letters: int
    gateways: int


class StoreHealth(_Out):
    reachable: bool
    error: str | None = None
    counts: StoreCounts | None = Field(
        default=None, description="Totals, counted at most every 30 s in the background (None before the first count)"
    )
    counted_at: datetime | None = Field(default=None, description="When counts were counted")


class IngesterHealth(_Out):
    running: bool = Field(description="False when this process serves the API only")
    connected: bool = False
    messages_received: int = 0
    telemetry_stored: int = 0
    readings_stored: int = 0
    duplicates: int = 0
    decode_errors: int = 0
    dead_letters: dict[str, int] = Field(default_factory=dict, description="Dead-lettered items by kind")
    status_stored: int = 0
    status_stale: int = 0
    health_stored: int = Field(default=0, description="Gateway health messages kept as the gateway's latest")
    health_stale: int = Field(default=0, description="Gateway health messages older than the one stored")
    acks_stored: int = 0
    ignored: int = 0
    acked: int = 0
    store_retries: int = 0
    internal_errors: int = 0
    connects: int = 0
    connection_failures: int = 0
    published: int = Field(default=0, description="Configurations and commands the broker acknowledged")
    publish_failures: int = 0
    last_message_at: datetime | None = None


class Health(_Out):
    status: Literal["ok", "degraded", "failing"] = Field(
        description="failing: the store is unreachable (HTTP 503); degraded: the ingester is not connected"
    )
    version: str
    store: StoreHealth
    ingester: IngesterHealth


# -- remote configuration and commands ---------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigIn(_In):
    """``PUT /api/v1/gateways/{gateway}/config``."""

    config: dict[str, JsonValue] = Field(
        description="The gateway's remote settings: poll_interval, device_backoff_max, log_level, devices, report "
        "(broker, gateway_id and buffer stay in the gateway's local file)",
        examples=[{"poll_interval": "5s", "log_level": "debug"}],
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_VERSION,
        strict=True,
        description="Greater than every version issued to the gateway; default: the next one",
    )


class CommandIn(_In):
    """``POST /api/v1/gateways/{gateway}/commands``."""

    action: str = Field(
        min_length=1, max_length=64, description=f"One of: {', '.join(sorted(ACTIONS))}", examples=["poll_now"]
    )
    args: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="write: device, value, and metric or table/address/type; poll_now: device (optional); "
        "restart_driver: device",
        examples=[{"device": "aq-centre-01"}],
    )


class AckOut(_Out):
    result: Literal["ok", "error"]
    detail: str = Field(description="The gateway's reason when result is error")
    at: datetime = Field(description="The gateway's time of its answer")
    received_at: datetime = Field(description="When the cloud received the answer")


class VersionAck(AckOut):
    version: int


class GatewayConfig(_Out):
    gateway: str
    version: int = Field(description="The desired version: the newest one the broker confirmed (retained)")
    config: dict[str, Any]
    issued_at: datetime
    published_at: datetime
    state: Literal["pending", "applied", "failed"] = Field(
        description="applied / failed: the gateway's answer to this version; pending: no answer yet"
    )
    ack: AckOut | None = Field(description="The gateway's answer to this version")
    applied_version: int | None = Field(description="The newest version the gateway applied (answered ok)")
    last_ack: VersionAck | None = Field(description="The newest version the gateway answered, ok or error")
    next_version: int = Field(description="What a PUT without a version gets")


class CommandOut(_Out):
    id: str
    gateway: str
    action: str
    args: dict[str, Any]
    issued_at: datetime
    expires_at: datetime = Field(description="Not run after this (the broker drops it, MQTT 5)")
    published_at: datetime | None = Field(description="When the broker confirmed it")
    publish_error: str | None = Field(description="Why the broker did not confirm it")
    state: Literal["pending", "ok", "error", "expired", "unsent"]
    ack: AckOut | None
