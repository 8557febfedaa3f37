"""The :class:`Store` interface and the records it takes and returns.

Every backend (SQLite now, InfluxDB next) implements the same async protocol and passes the same
shared test suite. Records are plain frozen dataclasses with UTC datetimes; the API maps them to
its own response models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable

from misto.protocol import GatewayState, Health, Reading

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (floor), exact for any aware datetime."""
    return (moment - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


class DeadLetterKind(StrEnum):
    """Why a message or a reading was not stored."""

    TOPIC = "topic"  # the topic does not follow misto/v1/<gateway>/<channel>
    OVERSIZE = "oversize"  # payload larger than misto.protocol.MAX_PAYLOAD_BYTES
    DECODE = "decode"  # invalid JSON or a field of the wrong type / missing / unknown
    SCHEMA = "schema"  # a schema version this ingester does not read
    GATEWAY_MISMATCH = "gateway_mismatch"  # the payload's gateway is not the topic's gateway
    VOCABULARY = "vocabulary"  # unknown metric, wrong unit or value outside the physical range
    TIMESTAMP = "timestamp"  # a reading's time too far in the future or the past (ingest.validation)
    DEVICE_OWNER = "device_owner"  # a gateway publishing for a device that belongs to another gateway
    UNKNOWN_REF = "unknown_ref"  # an ack for a command or configuration version never sent to that gateway
    INTERNAL = "internal"  # a bug in the ingester; the message is kept here rather than lost


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Something the ingester could not store, kept with the raw bytes for an operator."""

    received_at: datetime
    topic: str
    kind: DeadLetterKind
    reason: str
    payload: bytes
    gateway: str | None = None
    field: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    letter: DeadLetter


@dataclass(frozen=True, slots=True)
class LatestReading:
    device: str
    metric: str
    value: float
    unit: str
    ts: datetime
    gateway: str


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device with the latest reading of each of its metrics."""

    device: str
    gateway: str
    last_seen: datetime
    readings: tuple[LatestReading, ...]


@dataclass(frozen=True, slots=True)
class MessageWrite:
    """One telemetry message's good readings and its per-reading dead letters: the unit that
    :meth:`Store.write_messages` stores all or nothing of."""

    message_id: str
    gateway: str
    readings: Sequence[Reading]
    dead_letters: Sequence[DeadLetter] = ()


class Resolution(StrEnum):
    """Which data a range query reads: raw readings or a rollup. Each rollup window keeps the
    mean, min, max, count and last value of the raw readings in it."""

    RAW = "raw"
    MINUTE = "1m"
    HOUR = "1h"

    @property
    def span(self) -> timedelta | None:
        return {"raw": None, "1m": timedelta(minutes=1), "1h": timedelta(hours=1)}[self.value]


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """Aggregate of the readings in ``[start, start + every)``; windows align to the epoch."""

    start: datetime
    mean: float
    min: float
    max: float
    count: int
    last: float


@dataclass(frozen=True, slots=True)
class Series:
    device: str
    metric: str
    unit: str
    gateway: str
    windows: tuple[SeriesWindow, ...]
    resolution: Resolution = Resolution.RAW  # the data the windows were computed from


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One stored series (a device's metric) with its first and last reading time."""

    device: str
    metric: str
    unit: str
    gateway: str
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class IngestSnapshot:
    """An ingester's own counters (cumulative since it started) and gauges at ``at``, stored
    periodically so the operations dashboards can show ingest health next to the data."""

    instance: str  # the ingester's MQTT client id
    at: datetime
    messages_in: int
    readings_in: int
    readings_written: int
    rejected: int  # readings or messages refused at the door (dead-lettered with a reason)
    duplicates: int
    store_errors: int
    queue_depth: int
    batch_mean_readings: float
    write_p99_ms: float
    lag_s: float  # now minus the receive time of the oldest message not yet acknowledged


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """The newest health message of a gateway (``health.at`` is the gateway's time of it)."""

    gateway: str
    health: Health
    received_at: datetime  # when the cloud received it


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    gateway: str
    state: GatewayState | None  # None: heard telemetry, never a status message
    boot: str | None
    agent_version: str | None
    status_at: datetime | None  # the gateway's own time of its last status message
    last_seen: datetime  # when the cloud last heard from it (status, health or telemetry)
    health: GatewayHealth | None = None  # None: no health message yet


@dataclass(frozen=True, slots=True)
class StoreCounts:
    series: int
    readings: int
    messages: int
    dead_letters: int
    gateways: int


@runtime_checkable
class FlushRollups(Protocol):
    """Optional ability of a store whose rollups are computed after the write (InfluxDB's
    continuous queries run on their own schedule): compute now the 1-minute and 1-hour rollups of
    what was written. The conformance suite calls it before it reads rollups; a store that keeps
    them in the write transaction (SQLite) does not implement it."""

    async def flush_rollups(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """Where readings, dead letters and gateway status live. All methods are coroutines;
    implementations never block the event loop. Errors are :class:`misto.cloud.errors.StoreError`."""

    async def write_batch(
        self,
        message_id: str,
        gateway: str,
        readings: Sequence[Reading],
        *,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> bool:
        """Store one message's good readings and its per-reading dead letters atomically.

        Returns False, writing nothing, if ``message_id`` was stored before (a redelivery).
        A reading whose series and timestamp are already stored is not stored twice.
        """
        ...

    async def write_messages(self, batch: Sequence[MessageWrite]) -> list[bool]:
        """Store several messages durably before returning (the ingester acknowledges them after).

        Returns, per message, False if it was recognised as stored before (a redelivery) and so
        not written again. A store may not recognise every redelivery (InfluxDB keeps no message
        ids), but a reading whose series and timestamp are already stored never counts twice.
        A bad point the database refuses is dead-lettered without blocking the batch's good ones.
        """
        ...

    async def dead_letter(self, letter: DeadLetter) -> None: ...

    async def record_ingest(self, snapshot: IngestSnapshot) -> None:
        """Keep an ingester's self-metrics as a time series (measurement ``misto_ingest``)."""
        ...

    async def list_series(self, device: str | None = None) -> list[SeriesInfo]: ...

    async def latest(self, device: str | None = None, metric: str | None = None) -> list[LatestReading]: ...

    async def devices(self) -> list[DeviceInfo]: ...

    async def series(
        self,
        device: str,
        metric: str,
        start: datetime,
        end: datetime,
        every: timedelta,
        *,
        resolution: Resolution | None = None,
    ) -> Series | None:
        """Windows over ``[start, end)`` that hold readings; None if the series does not exist.

        ``resolution`` None lets the store choose: the coarsest rollup whose span divides
        ``every`` and which still covers ``start`` (raw data is kept for a shorter time than rollups).
        """
        ...

    async def dead_letters(self, limit: int, gateway: str | None = None) -> list[StoredDeadLetter]:
        """Newest first."""
        ...

    async def ping(self) -> None:
        """Cheap reachability check for health probes; :class:`StoreError` if the store cannot answer."""
        ...

    async def counts(self) -> StoreCounts:
        """Totals; may scan the whole store (InfluxDB: every raw point), so callers cache them."""
        ...

    async def set_gateway_status(
        self,
        gateway: str,
        state: GatewayState,
        *,
        boot: str,
        at: datetime,
        agent_version: str,
        received_at: datetime,
    ) -> bool:
        """Record a status message; False (nothing changed) if a newer status is already stored."""
        ...

    async def set_gateway_health(self, health: Health, *, received_at: datetime) -> bool:
        """Keep ``health`` as its gateway's latest; False (nothing changed) unless it is newer
        (by ``health.at``) than the one stored."""
        ...

    async def gateway_health(self, gateway: str) -> GatewayHealth | None:
        """The gateway's latest health message, None if none was stored."""
        ...

    async def gateways(self) -> list[GatewayStatus]: ...

    async def close(self) -> None: ...


class WritesOneMessage:
    """:meth:`Store.write_batch` for a store that implements :meth:`Store.write_messages`."""

    async def write_messages(self, batch: Sequence[MessageWrite]) -> list[bool]:
        raise NotImplementedError

    async def write_batch(
        self,
        message_id: str,
        gateway: str,
        readings: Sequence[Reading],
        *,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> bool:
        [stored] = await self.write_messages([MessageWrite(message_id, gateway, readings, dead_letters)])
        return stored
