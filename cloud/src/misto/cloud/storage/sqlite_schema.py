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
  cloud received it (version 2).

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

MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2)
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
