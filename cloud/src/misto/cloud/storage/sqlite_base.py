"""What every SQLite database of the cloud service shares: one connection, used only from one
worker thread (so no call blocks the event loop), WAL mode, a busy timeout, the schema migrated
at open, SQLite errors turned into :class:`StoreError` naming the operation."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import ClassVar, TypeVar

from misto.cloud.errors import StoreClosedError, StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")


class SqliteDatabase:
    """Subclasses set :attr:`what` (for messages) and implement :meth:`_prepare`."""

    what: ClassVar[str] = "SQLite database"
    thread_name: ClassVar[str] = "misto-sqlite"

    def __init__(self, path: Path, *, busy_timeout: timedelta = timedelta(seconds=5)) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout // timedelta(milliseconds=1)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.thread_name)
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    async def _open_in_worker(self) -> None:
        try:
            await self._call("open", self._open)
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    async def _call(self, operation: str, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreClosedError(operation)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(fn, *args))
        except sqlite3.Error as exc:
            raise StoreError(operation, f"{type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        await self._call("ping", self._ping)

    def _ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError("query")
        return self._conn

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                log.warning("%s %s runs in journal mode %r, not WAL", self.what, self.path, mode)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms:d}")
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Connection settings of this database and its migrations (on the worker thread)."""
        raise NotImplementedError

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._call("close", self._close)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
