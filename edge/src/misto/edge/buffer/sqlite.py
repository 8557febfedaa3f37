"""The durable buffer: a SQLite transaction log on disk (see :mod:`misto.edge.buffer.sqlite_log`).

A message is on disk before it is published and leaves only when the broker has acknowledged it,
so broker outages of hours, agent restarts and kill -9 lose nothing; on restart the messages
left are sent first, in order, with their original message ids. SQLite calls block (an fsync on
a slow SD card takes milliseconds), so they run on one worker thread of the buffer's own, never
on the event loop; that thread also serialises them. One agent per file (an exclusive lock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from misto.edge.buffer.base import Buffer, BufferLimits, BufferStats, DropPolicy, Entry, Outbound, SyncMode
from misto.edge.buffer.lock import FileLock
from misto.edge.buffer.sqlite_log import SqliteLog
from misto.edge.errors import BufferStorageError

T = TypeVar("T")
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024


class SqliteBuffer(Buffer):
    kind = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        max_messages: int,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age: float | None = None,
        when_full: DropPolicy = DropPolicy.DROP_OLDEST,
        sync: SyncMode = SyncMode.FULL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.limits = BufferLimits(max_messages, max_bytes, max_age, when_full)
        self._log = SqliteLog(path, self.limits, sync=sync, clock=clock)
        self._lock = FileLock(path.with_name(path.name + ".lock"))
        self._worker: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self._worker is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise BufferStorageError(str(self.path), f"cannot create its directory: {exc.strerror}") from exc
        self._lock.acquire()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="misto-buffer")
        try:
            await self._run(self._log.open)
        except BaseException:
            await self.close()
            raise

    async def _run(self, call: Callable[..., T], *args: object) -> T:
        if self._worker is None:
            raise BufferStorageError(str(self.path), "the buffer is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, call, *args)
        except BufferStorageError:
            raise
        except Exception as exc:  # sqlite3.Error: translated here, so callers see the edge's own errors
            raise BufferStorageError(str(self.path), f"{exc.__class__.__name__}: {exc}") from exc

    async def append(self, message: Outbound) -> int | None:
        return await self._run(self._log.append, message)

    async def peek(self, limit: int, *, after: int | None = None) -> list[Entry]:
        if self._worker is not None and (cached := self._log.peek_cached(limit, after)) is not None:
            return cached  # steady state: what was just appended, without a trip to the worker thread
        return await self._run(self._log.peek, limit, after)

    async def commit(self, ids: Iterable[int]) -> int:
        wanted = list(ids)
        return await self._run(lambda: self._log.remove(wanted, sent=True)) if wanted else 0

    async def reject(self, ids: Iterable[int]) -> int:
        wanted = list(ids)
        return await self._run(lambda: self._log.remove(wanted, sent=False)) if wanted else 0

    async def trim(self) -> int:
        return await self._run(self._log.trim)

    def depth(self) -> int:
        return self._log.depth()

    def stats(self) -> BufferStats:
        return self._log.stats()

    async def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(worker, self._log.close)
            finally:
                worker.shutdown(wait=True)
        self._lock.release()
