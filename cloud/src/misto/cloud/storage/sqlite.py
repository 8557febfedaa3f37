"""The SQLite store: one file, WAL mode, every call on one dedicated worker thread.

One call of :meth:`SqliteStore.write_messages` is one transaction: the messages' ids, readings,
dead letters and the rollups they change commit together (WAL with ``synchronous=NORMAL``: a
committed transaction survives a crash of the process; a power cut may lose the last ones, never
corrupt the file). Windowed queries and retention: :mod:`misto.cloud.storage.sqlite_rollups`.
Tables, schema version and migrations: :mod:`misto.cloud.storage.sqlite_schema`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar

from misto.cloud.settings import SqliteStoreSettings
from misto.cloud.storage.base import (
    EPOCH,
    DeadLetter,
    DeviceInfo,
    GatewayHealth,
    GatewayStatus,
    IngestSnapshot,
    LatestReading,
    MessageWrite,
    Resolution,
    Series,
    SeriesInfo,
    StoreCounts,
    StoredDeadLetter,
    WritesOneMessage,
    from_ms,
    to_ms,
)
from misto.cloud.storage.measurements import INGEST_FIELDS
from misto.cloud.storage.sqlite_base import SqliteDatabase
from misto.cloud.storage.sqlite_health import get_health, read_gateways, set_health
from misto.cloud.storage.sqlite_letters import INSERT_DEAD_LETTER, letter_row, read_dead_letters
from misto.cloud.storage.sqlite_rollups import kept_from, plan, purge, windows
from misto.cloud.storage.sqlite_schema import SCHEMA_VERSION, migrate
from misto.protocol import GatewayState, Health, Reading

log = logging.getLogger(__name__)
T = TypeVar("T")
_MS: Final = timedelta(milliseconds=1)
__all__ = ["SCHEMA_VERSION", "SqliteStore"]

#: Retention by resolution (None: kept forever), the defaults of :class:`SqliteStoreSettings`.
DEFAULT_RETENTION: Final[Mapping[Resolution, timedelta | None]] = {
    Resolution.RAW: timedelta(days=30),
    Resolution.MINUTE: timedelta(days=400),
    Resolution.HOUR: None,
}
#: Writes run the retention purge themselves at most this often (the service may call it too).
PURGE_EVERY: Final = timedelta(minutes=10)

# The latest reading of a series is the last of its newest 1-hour rollup: kept longer than raw.
_LATEST_SQL: Final = """
SELECT s.device, s.metric, h.last, s.unit, h.last_ts, s.gateway
FROM series AS s
JOIN rollup_1h AS h ON h.series_id = s.id AND h.start = (SELECT max(start) FROM rollup_1h WHERE series_id = s.id)
WHERE (:device IS NULL OR s.device = :device) AND (:metric IS NULL OR s.metric = :metric)
ORDER BY s.device, s.metric
"""
_LIST_SERIES_SQL: Final = """
SELECT s.device, s.metric, s.unit, s.gateway,
       (SELECT first_ts FROM rollup_1h WHERE series_id = s.id ORDER BY start LIMIT 1),
       (SELECT last_ts FROM rollup_1h WHERE series_id = s.id ORDER BY start DESC LIMIT 1)
FROM series AS s WHERE :device IS NULL OR s.device = :device ORDER BY s.device, s.metric
"""
_INSERT_MESSAGE: Final = "INSERT OR IGNORE INTO processed_messages (message_id, gateway, received_at) VALUES (?, ?, ?)"
_INSERT_READING: Final = "INSERT OR IGNORE INTO readings (series_id, ts, value) VALUES (?, ?, ?)"
_INSERT_INGEST: Final = (
    f"INSERT OR REPLACE INTO ingest_stats (instance, at, {', '.join(INGEST_FIELDS)})"  # noqa: S608 - constants
    f" VALUES (?, ?, {', '.join('?' for _ in INGEST_FIELDS)})"
)
_UPSERT_SERIES: Final = """
INSERT INTO series (device, metric, gateway, unit) VALUES (?, ?, ?, ?)
ON CONFLICT (device, metric) DO UPDATE SET gateway = excluded.gateway, unit = excluded.unit
RETURNING id
"""
_SEEN_GATEWAY: Final = """
INSERT INTO gateways (gateway, last_seen) VALUES (?, ?)
ON CONFLICT (gateway) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
"""
_SET_STATUS: Final = """
INSERT INTO gateways (gateway, state, boot, agent_version, status_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (gateway) DO UPDATE SET
    state = excluded.state, boot = excluded.boot, agent_version = excluded.agent_version,
    status_at = excluded.status_at, last_seen = max(last_seen, excluded.last_seen)
WHERE gateways.status_at IS NULL OR excluded.status_at >= gateways.status_at
"""

_SeriesKey = tuple[str, str]
_SeriesRow = tuple[int, str, str]  # id, gateway, unit


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SqliteStore(WritesOneMessage, SqliteDatabase):
    """Open with :meth:`open`; close with :meth:`close` (or ``async with``)."""

    what = "SQLite store"
    thread_name = "misto-sqlite"

    def __init__(
        self,
        path: Path,
        *,
        dedup_retention: timedelta = timedelta(days=30),
        retention: Mapping[Resolution, timedelta | None] = DEFAULT_RETENTION,
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout: timedelta = timedelta(seconds=5),
        purge_every: timedelta = PURGE_EVERY,
    ) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        self._dedup_retention = dedup_retention
        self._retention = {r: retention.get(r) for r in Resolution}
        self._clock = clock
        self._purge_every = purge_every
        self._next_purge = clock() + purge_every
        self._series_cache: dict[_SeriesKey, _SeriesRow] = {}
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        dedup_retention: timedelta = timedelta(days=30),
        retention: Mapping[Resolution, timedelta | None] = DEFAULT_RETENTION,
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout: timedelta = timedelta(seconds=5),
        purge_every: timedelta = PURGE_EVERY,
    ) -> SqliteStore:
        """Open (creating or migrating) the database at ``path``. ``busy_timeout``: how long a
        call waits for a lock held by another connection (e.g. a backup) before it fails.
        ``retention``: how long each resolution is kept (None: forever); writes purge what is
        older at most every ``purge_every``, not at open."""
        store = cls(
            path,
            dedup_retention=dedup_retention,
            retention=retention,
            clock=clock,
            busy_timeout=busy_timeout,
            purge_every=purge_every,
        )
        await store._open_in_worker()
        return store

    @classmethod
    async def from_settings(cls, settings: SqliteStoreSettings) -> SqliteStore:
        hour = settings.rollup_1h_retention_days
        retention = {
            Resolution.RAW: timedelta(days=settings.raw_retention_days),
            Resolution.MINUTE: timedelta(days=settings.rollup_1m_retention_days),
            Resolution.HOUR: None if hour is None else timedelta(days=hour),
        }
        return await cls.open(
            settings.path, dedup_retention=timedelta(days=settings.dedup_retention_days), retention=retention
        )

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, self.path)
        self._conn = conn
        self._prune()

    def _prune(self) -> None:
        cutoff = to_ms(self._clock() - self._dedup_retention)
        self._db.execute("DELETE FROM processed_messages WHERE received_at < ?", (cutoff,))

    async def purge(self, now: datetime) -> dict[Resolution, int]:
        """Delete what each resolution keeps no longer at ``now`` and message ids past the dedup
        retention. Returns the rows deleted per resolution. Writes call this themselves at most
        every ``purge_every``; a service may call it on its own schedule."""
        return await self._call("purge", self._purge, now)

    def _purge(self, now: datetime) -> dict[Resolution, int]:
        deleted = purge(self._db, to_ms(now), self._retention)
        self._prune()
        raw = self._retention[Resolution.RAW]
        if raw is not None:  # self-metrics are kept as long as raw readings
            self._db.execute("DELETE FROM ingest_stats WHERE at < ?", (to_ms(now - raw),))
        self._next_purge = now + self._purge_every
        if any(deleted.values()):
            log.info("retention purge deleted %s", ", ".join(f"{n} {r.value}" for r, n in deleted.items()))
        return deleted

    # -- writes ----------------------------------------------------------------------------

    async def write_messages(self, batch: Sequence[MessageWrite]) -> list[bool]:
        return await self._call("write_messages", self._write_messages, tuple(batch))

    def _write_messages(self, batch: tuple[MessageWrite, ...]) -> list[bool]:
        db = self._db
        moment = self._clock()
        now = to_ms(moment)
        new_series: dict[_SeriesKey, _SeriesRow] = {}
        stored: list[bool] = []
        rows: list[tuple[int, int, float]] = []
        letters: list[tuple[object, ...]] = []
        gateways: set[str] = set()
        series_id = self._series_id
        db.execute("BEGIN IMMEDIATE")
        try:
            for message in batch:
                gateway = message.gateway
                fresh = db.execute(_INSERT_MESSAGE, (message.message_id, gateway, now)).rowcount > 0
                stored.append(fresh)
                if not fresh:
                    continue
                gateways.add(gateway)
                rows.extend(
                    (series_id(db, r, gateway, new_series), (r.ts - EPOCH) // _MS, r.value) for r in message.readings
                )
                letters.extend(letter_row(letter) for letter in message.dead_letters)
            db.executemany(_INSERT_READING, rows)  # duplicates of (series, ts) are ignored, rollups untouched
            db.executemany(INSERT_DEAD_LETTER, letters)
            db.executemany(_SEEN_GATEWAY, [(gateway, now) for gateway in sorted(gateways)])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._series_cache.update(new_series)
        if moment >= self._next_purge:
            try:
                self._purge(moment)
            except sqlite3.Error as exc:  # the write is committed; the next one tries again
                self._next_purge = moment + self._purge_every
                log.warning("retention purge of %s failed: %s: %s", self.path, type(exc).__name__, exc)
        return stored

    def _series_id(
        self, db: sqlite3.Connection, reading: Reading, gateway: str, new: dict[_SeriesKey, _SeriesRow]
    ) -> int:
        key = (reading.device, reading.metric)
        known = new.get(key) or self._series_cache.get(key)
        if known is not None and known[1:] == (gateway, reading.unit):
            return known[0]
        series_id: int = db.execute(_UPSERT_SERIES, (*key, gateway, reading.unit)).fetchone()[0]
        new[key] = (series_id, gateway, reading.unit)
        return series_id

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self._call("dead_letter", self._dead_letter, letter)

    def _dead_letter(self, letter: DeadLetter) -> None:
        self._db.execute(INSERT_DEAD_LETTER, letter_row(letter))

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
        row = (gateway, state.value, boot, agent_version, to_ms(at), to_ms(received_at))
        return await self._call("set_gateway_status", self._set_status, row)

    def _set_status(self, row: tuple[object, ...]) -> bool:
        return self._db.execute(_SET_STATUS, row).rowcount > 0

    async def set_gateway_health(self, health: Health, *, received_at: datetime) -> bool:
        return await self._call("set_gateway_health", lambda: set_health(self._db, health, to_ms(received_at)))

    async def gateway_health(self, gateway: str) -> GatewayHealth | None:
        return await self._call("gateway_health", lambda: get_health(self._db, gateway))

    # -- reads -----------------------------------------------------------------------------

    async def latest(self, device: str | None = None, metric: str | None = None) -> list[LatestReading]:
        return await self._call("latest", self._latest, device, metric)

    def _latest(self, device: str | None, metric: str | None) -> list[LatestReading]:
        rows = self._db.execute(_LATEST_SQL, {"device": device, "metric": metric}).fetchall()
        return [LatestReading(dev, met, val, unit, from_ms(ts), gw) for dev, met, val, unit, ts, gw in rows]

    async def devices(self) -> list[DeviceInfo]:
        readings = await self.latest()
        by_device: dict[str, list[LatestReading]] = {}
        for reading in readings:
            by_device.setdefault(reading.device, []).append(reading)
        devices = []
        for device, latest in by_device.items():
            newest = max(latest, key=lambda r: r.ts)
            devices.append(DeviceInfo(device, newest.gateway, newest.ts, tuple(latest)))
        return devices

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
        span = to_ms_span(every)
        key = (device, metric)
        return await self._call("series", self._series, key, to_ms(start), to_ms(end), span, resolution)

    def _series(
        self, key: _SeriesKey, start: int, end: int, every: int, resolution: Resolution | None
    ) -> Series | None:
        db = self._db
        device, metric = key
        row = db.execute("SELECT id, unit, gateway FROM series WHERE device = ? AND metric = ?", key).fetchone()
        if row is None:
            return None
        series_id, unit, gateway = row
        used, pieces = plan(start, end, every, resolution=resolution, kept_from=kept_from(db))
        origin = start - start % every  # the epoch-aligned start of the first window
        found = windows(db, series_id, pieces, origin, every)
        return Series(device, metric, unit, gateway, tuple(found), used)

    async def list_series(self, device: str | None = None) -> list[SeriesInfo]:
        return await self._call("list_series", self._list_series, device)

    def _list_series(self, device: str | None) -> list[SeriesInfo]:
        rows = self._db.execute(_LIST_SERIES_SQL, {"device": device}).fetchall()
        return [
            SeriesInfo(dev, met, unit, gw, from_ms(first), from_ms(last))
            for dev, met, unit, gw, first, last in rows
            if first is not None and last is not None  # every reading of it is past retention
        ]

    async def record_ingest(self, snapshot: IngestSnapshot) -> None:
        row = (snapshot.instance, to_ms(snapshot.at), *(getattr(snapshot, name) for name in INGEST_FIELDS))
        await self._call("record_ingest", lambda: self._db.execute(_INSERT_INGEST, row))

    async def dead_letters(self, limit: int, gateway: str | None = None) -> list[StoredDeadLetter]:
        return await self._call("dead_letters", lambda: read_dead_letters(self._db, limit, gateway))

    async def counts(self) -> StoreCounts:
        return await self._call("counts", self._counts)

    def _counts(self) -> StoreCounts:
        db = self._db
        (series, readings, messages, letters, gateways) = db.execute(
            """
            SELECT (SELECT count(*) FROM series), (SELECT count(*) FROM readings),
                   (SELECT count(*) FROM processed_messages), (SELECT count(*) FROM dead_letters),
                   (SELECT count(*) FROM gateways)
            """
        ).fetchone()
        return StoreCounts(series, readings, messages, letters, gateways)

    async def gateways(self) -> list[GatewayStatus]:
        return await self._call("gateways", lambda: read_gateways(self._db))


def to_ms_span(every: timedelta) -> int:
    span = every // timedelta(milliseconds=1)
    if span <= 0:
        raise ValueError(f"window length must be at least 1 ms, got {every}")
    return span
