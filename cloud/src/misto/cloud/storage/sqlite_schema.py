"""The SQLite store's schema and its migrations.

Tables:

- ``series(id, device, metric, gateway, unit)``, one row per device and metric;
- ``readings(series_id, ts, value)`` with ``ts`` in integer milliseconds since the epoch and
  ``PRIMARY KEY(series_id, ts)``: the same series and instant is never stored twice;
- ``processed_messages(message_id, gateway, received_at)``: ids of stored telemetry messages,
  so a redelivered message is recognised (kept ``dedup_retention``);
- ``dead_letters(id, received_at, topic, gateway, kind, reason, field, message_id, payload)``;
- ``gateways(gateway, state, boot, agent_version, status_at, last_seen, health, health_at,
  health_received_at)``, where ``health`` is the gateway's latest health message (JSON, as decoded
  and re-encoded by misto.protocol), ``health_at`` its ``at`` and ``health_received_at`` when the
  cloud received it (version 2);
- ``rollup_1m`` and ``rollup_1h(series_id, start, count, sum, min, max, first_ts, last_ts, last)``:
  one row per series and epoch-aligned window (``start`` in ms), kept up to date by the trigger
  ``readings_rollup`` in the transaction that inserts the reading. A trigger fires only for rows
  actually inserted, so a reading ignored as a duplicate (same series and ``ts``) never counts
  twice. The migration builds them from the readings already stored (version 3);
- ``purges(resolution, before)``: everything of that resolution older than ``before`` (ms) has been
  deleted by retention, so queries read a coarser resolution there (version 3);
- ``ingest_stats(instance, at, ...)``: the ingesters' self-metrics over time (version 3);
- the index ``series_metric(metric, device)``: queries across devices (the SQLite flavour of the
  Grafana dashboards, ``s.metric = 'pm25'`` joined to a rollup) start from the metric's series and
  read each one's windows along the rollup's primary key, instead of scanning the whole rollup
  table (version 4).

The version is ``PRAGMA user_version``. ``MIGRATIONS[n]`` takes a database from version ``n`` to
``n + 1``; each runs in its own transaction at open. A change to the schema is a new entry here
(never an edit of an old one) and a test that migrates a database of the previous version.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from misto.cloud.errors import StoreSchemaError

log = logging.getLogger(__name__)

_V1: Final = """
CREATE TABLE series (
    id      INTEGER PRIMARY KEY,
    device  TEXT NOT NULL,
    metric  TEXT NOT NULL,
    gateway TEXT NOT NULL,
    unit    TEXT NOT NULL,
    UNIQUE (device, metric)
);
CREATE TABLE readings (
    series_id INTEGER NOT NULL REFERENCES series (id),
    ts        INTEGER NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TABLE processed_messages (
    message_id  TEXT PRIMARY KEY,
    gateway     TEXT NOT NULL,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX processed_messages_received_at ON processed_messages (received_at);
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    gateway     TEXT,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    field       TEXT,
    message_id  TEXT,
    payload     BLOB NOT NULL
);
CREATE INDEX dead_letters_gateway ON dead_letters (gateway, id);
CREATE TABLE gateways (
    gateway       TEXT PRIMARY KEY,
    state         TEXT,
    boot          TEXT,
    agent_version TEXT,
    status_at     INTEGER,
    last_seen     INTEGER NOT NULL
) WITHOUT ROWID;
"""

_V2: Final = """
ALTER TABLE gateways ADD COLUMN health TEXT;
ALTER TABLE gateways ADD COLUMN health_at INTEGER;
ALTER TABLE gateways ADD COLUMN health_received_at INTEGER;
"""


def _rollup_table(name: str) -> str:
    return f"""
CREATE TABLE {name} (
    series_id INTEGER NOT NULL REFERENCES series (id),
    start     INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    first_ts  INTEGER NOT NULL,
    last_ts   INTEGER NOT NULL,
    last      REAL NOT NULL,
    PRIMARY KEY (series_id, start)
) WITHOUT ROWID;
"""


def _window_start(ts: str, span_ms: int) -> str:
    """SQL for the start of the epoch-aligned window of ``span_ms`` holding ``ts`` (also before 1970)."""
    return f"({ts} - (({ts} % {span_ms}) + {span_ms}) % {span_ms})"


def _rollup_upsert(name: str, span_ms: int) -> str:
    start = _window_start("NEW.ts", span_ms)
    return f"""
    INSERT INTO {name} (series_id, start, count, sum, min, max, first_ts, last_ts, last)
    VALUES (NEW.series_id, {start}, 1, NEW.value, NEW.value, NEW.value, NEW.ts, NEW.ts, NEW.value)
    ON CONFLICT (series_id, start) DO UPDATE SET
        count = count + 1, sum = sum + excluded.sum, min = min(min, excluded.min), max = max(max, excluded.max),
        first_ts = min(first_ts, excluded.first_ts),
        last = CASE WHEN excluded.last_ts > last_ts THEN excluded.last ELSE last END,
        last_ts = max(last_ts, excluded.last_ts);"""  # noqa: S608 - constants only


def _rollup_backfill(name: str, span_ms: int) -> str:
    start = _window_start("ts", span_ms)
    return f"""
INSERT INTO {name} (series_id, start, count, sum, min, max, first_ts, last_ts, last)
SELECT w.series_id, w.start, w.n, w.s, w.lo, w.hi, w.first_ts, w.last_ts,
       (SELECT value FROM readings AS r WHERE r.series_id = w.series_id AND r.ts = w.last_ts)
FROM (
    SELECT series_id, {start} AS start, count(*) AS n, sum(value) AS s, min(value) AS lo, max(value) AS hi,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM readings GROUP BY series_id, {start}
) AS w;
"""  # noqa: S608 - constants only


MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000

_V3: Final = f"""
{_rollup_table("rollup_1m")}
{_rollup_table("rollup_1h")}
{_rollup_backfill("rollup_1m", MINUTE_MS)}
{_rollup_backfill("rollup_1h", HOUR_MS)}
CREATE TRIGGER readings_rollup AFTER INSERT ON readings BEGIN
{_rollup_upsert("rollup_1m", MINUTE_MS)}
{_rollup_upsert("rollup_1h", HOUR_MS)}
END;
CREATE TABLE purges (
    resolution TEXT PRIMARY KEY,
    before     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE ingest_stats (
    instance            TEXT NOT NULL,
    at                  INTEGER NOT NULL,
    messages_in         INTEGER NOT NULL,
    readings_in         INTEGER NOT NULL,
    readings_written    INTEGER NOT NULL,
    rejected            INTEGER NOT NULL,
    duplicates          INTEGER NOT NULL,
    store_errors        INTEGER NOT NULL,
    queue_depth         INTEGER NOT NULL,
    batch_mean_readings REAL NOT NULL,
    write_p99_ms        REAL NOT NULL,
    lag_s               REAL NOT NULL,
    PRIMARY KEY (instance, at)
) WITHOUT ROWID;
CREATE INDEX ingest_stats_at ON ingest_stats (at);
"""

_V4: Final = """
CREATE INDEX series_metric ON series (metric, device);
"""

MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def migrate(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[str] = MIGRATIONS, *, what: str = "SQLite store"
) -> None:
    """Bring the database at ``path`` to version ``len(migrations)``, one transaction per step.

    Shared by every SQLite database of misto-cloud (``what`` names it in logs and errors).
    """
    latest = len(migrations)
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > latest:
        raise StoreSchemaError(
            "open",
            f"{path} has schema version {version}, newer than this misto-cloud reads ({latest}); upgrade misto-cloud",
        )
    for target in range(version + 1, latest + 1):
        log.info("migrating %s %s to schema version %d", what, path, target)
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{migrations[target - 1]}\nPRAGMA user_version = {target};\nCOMMIT;")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreSchemaError("open", f"migration of {path} to schema version {target} failed: {exc}") from exc
