"""The registry's SQLAlchemy engine per dialect. SQLite: foreign keys on, WAL, and every
transaction begun with ``BEGIN IMMEDIATE`` (a writer takes the lock up front rather than failing
when it upgrades a read lock). PostgreSQL: a pool as large as the registry's worker threads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from misto.cloud.registry.errors import InvalidFieldError

POSTGRES_WORKERS = 4


def create_engine(url: str) -> sa.Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://...``, set up as the registry needs."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, connect_args={"timeout": 5.0})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy, not pysqlite, begins transactions
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(parsed, pool_size=POSTGRES_WORKERS, pool_pre_ping=True)
    raise InvalidFieldError(
        "registry.url", f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )
