"""The schema of the control database (remote configuration and commands) and its migrations.

Tables:

- ``configs(gateway, version, config, issued_at, published_at, publish_error, ack_*)``: every
  configuration version issued to a gateway (``config`` as JSON text), never reused;
- ``commands(id, gateway, action, args, issued_at, expires_at, published_at, publish_error, ack_*)``.

``ack_result``, ``ack_detail``, ``ack_at`` (the gateway's clock) and ``ack_received_at`` hold the
gateway's latest answer. Times are integer milliseconds since the epoch. The version is
``PRAGMA user_version``; ``MIGRATIONS[n]`` takes the database from version ``n`` to ``n + 1``
(see :func:`misto.cloud.storage.sqlite_schema.migrate`): a change is a new entry, never an edit.
"""

from __future__ import annotations

from typing import Final

_V1: Final = """
CREATE TABLE configs (
    gateway         TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    config          TEXT NOT NULL,
    issued_at       INTEGER NOT NULL,
    published_at    INTEGER,
    publish_error   TEXT,
    ack_result      TEXT CHECK (ack_result IN ('ok', 'error')),
    ack_detail      TEXT,
    ack_at          INTEGER,
    ack_received_at INTEGER,
    PRIMARY KEY (gateway, version)
) WITHOUT ROWID;
CREATE TABLE commands (
    id              TEXT PRIMARY KEY,
    gateway         TEXT NOT NULL,
    action          TEXT NOT NULL,
    args            TEXT NOT NULL,
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    published_at    INTEGER,
    publish_error   TEXT,
    ack_result      TEXT CHECK (ack_result IN ('ok', 'error')),
    ack_detail      TEXT,
    ack_at          INTEGER,
    ack_received_at INTEGER
);
CREATE INDEX commands_gateway ON commands (gateway);
"""

MIGRATIONS: Final[tuple[str, ...]] = (_V1,)
SCHEMA_VERSION: Final = len(MIGRATIONS)
