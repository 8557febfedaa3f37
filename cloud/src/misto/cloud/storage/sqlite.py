"""The SQLite store: one file, WAL mode, every call on one dedicated worker thread.

One message is one transaction: its message id, readings and dead letters commit together. Tables,
schema version and migrations: :mod:`misto.cloud.storage.sqlite_schema`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TypeVar

from misto.cloud.storage.base import (
    DeadLetter,
    DeadLetterKind,
    DeviceInfo,
    GatewayHealth,
    GatewayStatus,
    LatestReading,
    Series,
    SeriesWindow,
    StoreCounts,
    StoredDeadLetter,
    from_ms,
    to_ms,
)
from misto.cloud.storage.sqlite_base import SqliteDatabase
from misto.cloud.storage.sqlite_health import get_health, read_health, set_health
from misto.cloud.storage.sqlite_schema import SCHEMA_VERSION, migrate
from misto.protocol import GatewayState, Health, Reading

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["SCHEMA_VERSION", "SqliteStore"]

PRUNE_EVERY_WRITES: Final = 1000

_LATEST_SQL: Final = """
SELECT s.device, s.metric, r.value, s.unit, r.ts, s.gateway
FROM series AS s
JOIN readings AS r ON r.series_id = s.id
WHERE r.ts = (SELECT max(ts) FROM readings WHERE series_id = s.id)
  AND (:device IS NULL OR s.device = :device)
  AND (:metric IS NULL OR s.metric = :metric)
ORDER BY s.device, s.metric
"""
_UPSERT_SERIES: Final = """
INSERT INTO series (device, metric, gateway, unit) VALUES (?, ?, ?, ?)
ON CONFLICT (device, metric) DO UPDATE SET gateway = excluded.gateway, unit = excluded.unit
RETURNING id
"""
_INSERT_DEAD_LETTER: Final = """
INSERT INTO dead_letters (received_at, topic, gateway, kind, reason, field, message_id, payload)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
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


class SqliteStore(SqliteDatabase):
    """Open with :meth:`open`; close with :meth:`close` (or ``async with``)."""

    what = "SQLite store"
    thread_name = "misto-sqlite"

    def __init__(
        self,
        path: Path,
        *,
        dedup_retention: timedelta = timedelta(days=30),
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        self._dedup_retention = dedup_retention
        self._clock = clock
        self._series_cache: dict[_SeriesKey, _SeriesRow] = {}
        self._writes = 0
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        dedup_retention: timedelta = timedelta(days=30),
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout: timedelta = timedelta(seconds=5),
    ) -> SqliteStore:
        """Open (creating or migrating) the database at ``path``. ``busy_timeout``: how long a
        call waits for a lock held by another connection (e.g. a backup) before it fails."""
        store = cls(path, dedup_retention=dedup_retention, clock=clock, busy_timeout=busy_timeout)
        await store._open_in_worker()
        return store

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

    # -- writes ----------------------------------------------------------------------------

    async def write_batch(
        self,
        message_id: str,
        gateway: str,
        readings: Sequence[Reading],
        *,
        dead_letters: Sequence[DeadLetter] = (),
    ) -> bool:
        return await self._call(
            "write_batch", self._write_batch, message_id, gateway, tuple(readings), tuple(dead_letters)
        )

    def _write_batch(
        self, message_id: str, gateway: str, readings: tuple[Reading, ...], letters: tuple[DeadLetter, ...]
    ) -> bool:
        db = self._db
        now = to_ms(self._clock())
        new_series: dict[_SeriesKey, _SeriesRow] = {}
        db.execute("BEGIN IMMEDIATE")
        try:
            inserted = db.execute(
                "INSERT OR IGNORE INTO processed_messages (message_id, gateway, received_at) VALUES (?, ?, ?)",
                (message_id, gateway, now),
            ).rowcount
            if inserted == 0:
                db.execute("ROLLBACK")
                return False
            rows = [
                (self._series_id(db, reading, gateway, new_series), to_ms(reading.ts), reading.value)
                for reading in readings
            ]
            db.executemany("INSERT OR IGNORE INTO readings (series_id, ts, value) VALUES (?, ?, ?)", rows)
            db.executemany(_INSERT_DEAD_LETTER, [_letter_row(letter) for letter in letters])
            db.execute(_SEEN_GATEWAY, (gateway, now))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._series_cache.update(new_series)
        self._writes += 1
        if self._writes % PRUNE_EVERY_WRITES == 0:
            self._prune()
        return True

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
        self._db.execute(_INSERT_DEAD_LETTER, _letter_row(letter))

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

    async def series(self, device: str, metric: str, start: datetime, end: datetime, every: timedelta) -> Series | None:
        return await self._call("series", self._series, device, metric, to_ms(start), to_ms(end), to_ms_span(every))

    def _series(self, device: str, metric: str, start: int, end: int, every: int) -> Series | None:
        row = self._db.execute(
            "SELECT id, unit, gateway FROM series WHERE device = ? AND metric = ?", (device, metric)
        ).fetchone()
        if row is None:
            return None
        series_id, unit, gateway = row
        origin = start - start % every  # the epoch-aligned start of the first window
        windows = self._db.execute(
            """
            SELECT (ts - :origin) / :every AS k, avg(value), min(value), max(value), count(*)
            FROM readings WHERE series_id = :id AND ts >= :start AND ts < :end
            GROUP BY k ORDER BY k
            """,
            {"origin": origin, "every": every, "id": series_id, "start": start, "end": end},
        ).fetchall()
        return Series(
            device,
            metric,
            unit,
            gateway,
            tuple(SeriesWindow(from_ms(origin + k * every), mean, lo, hi, n) for k, mean, lo, hi, n in windows),
        )

    async def dead_letters(self, limit: int, gateway: str | None = None) -> list[StoredDeadLetter]:
        return await self._call("dead_letters", self._dead_letters, limit, gateway)

    def _dead_letters(self, limit: int, gateway: str | None) -> list[StoredDeadLetter]:
        rows = self._db.execute(
            """
            SELECT id, received_at, topic, gateway, kind, reason, field, message_id, payload FROM dead_letters
            WHERE (:gateway IS NULL OR gateway = :gateway) ORDER BY id DESC LIMIT :limit
            """,
            {"gateway": gateway, "limit": limit},
        ).fetchall()
        return [
            StoredDeadLetter(
                row_id,
                DeadLetter(
                    received_at=from_ms(received),
                    topic=topic,
                    kind=DeadLetterKind(kind),
                    reason=reason,
                    payload=bytes(payload),
                    gateway=gw,
                    field=field,
                    message_id=message_id,
                ),
            )
            for row_id, received, topic, gw, kind, reason, field, message_id, payload in rows
        ]

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
        return await self._call("gateways", self._gateways)

    def _gateways(self) -> list[GatewayStatus]:
        rows = self._db.execute(
            "SELECT gateway, state, boot, agent_version, status_at, last_seen, health, health_received_at"
            " FROM gateways ORDER BY gateway"
        ).fetchall()
        return [
            GatewayStatus(
                gateway=gw,
                state=GatewayState(state) if state is not None else None,
                boot=boot,
                agent_version=version,
                status_at=from_ms(status_at) if status_at is not None else None,
                last_seen=from_ms(last_seen),
                health=read_health(gw, health, health_received),
            )
            for gw, state, boot, version, status_at, last_seen, health, health_received in rows
        ]


def to_ms_span(every: timedelta) -> int:
    span = every // timedelta(milliseconds=1)
    if span <= 0:
        raise ValueError(f"window length must be at least 1 ms, got {every}")
    return span


def _letter_row(letter: DeadLetter) -> tuple[object, ...]:
    return (
        to_ms(letter.received_at),
        letter.topic,
        letter.gateway,
        letter.kind.value,
        letter.reason,
        letter.field,
        letter.message_id,
        letter.payload,
    )
