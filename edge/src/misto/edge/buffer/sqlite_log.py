"""The SQLite transaction log behind :class:`~misto.edge.buffer.sqlite.SqliteBuffer`: the only module
of the agent that imports sqlite3. Synchronous, used from one thread only (the buffer's worker).

File: one table ``outbox`` (id, message_id, topic, created, readings, size, payload), ids from
``AUTOINCREMENT`` so they are never reused, WAL journal, ``auto_vacuum=INCREMENTAL`` so the file
gives back the space of a long outage once it has drained. Depth, bytes and the oldest entry's
creation time are kept in memory (loaded at open), so appends and stats need no scans.

Durability (``sync``): in WAL mode a commit is in the OS's hands as soon as it returns, so a killed
agent (kill -9, OOM) loses nothing with either mode. ``full`` (``PRAGMA synchronous=FULL``) also
fsyncs the WAL at every commit, so a power cut loses nothing either: each append is its own
commit (a single INSERT, or one transaction with the drops it needs); removals are committed in
batches by the uplink, so they add few syncs. ``normal`` syncs only at checkpoints: a power cut
can lose the last appends (and a lost removal only means a message is sent again, which the
ingester drops by its message id).

A file that is not a database or is corrupt (flash worn out, power cut on a card that lies about
fsync) is moved aside as ``<name>.corrupt-<time>`` and a new one is started, logged as an error:
the agent keeps running.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from misto.edge.buffer.base import BufferLimits, BufferStats, Counters, DropPolicy, Entry, Outbound, SyncMode
from misto.edge.buffer.tail_cache import TailCache
from misto.edge.errors import BufferStorageError

log = logging.getLogger("misto.edge.buffer")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT    NOT NULL,
    topic      TEXT    NOT NULL,
    created    REAL    NOT NULL,
    readings   INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    payload    BLOB    NOT NULL
);
"""
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_CHUNK = 500  # ids per DELETE (well under SQLite's bound-parameter limit)
_VACUUM_PAGES = 256  # give free pages back to the file system once this many are free


class SqliteLog:
    def __init__(
        self,
        path: Path,
        limits: BufferLimits,
        *,
        sync: SyncMode = SyncMode.FULL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.limits = limits
        self.sync = sync
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # guards the figures below, read by stats() from the event loop
        self._counters = Counters()
        self._depth = 0
        self._bytes = 0
        self._oldest: float | None = None
        self._tail = TailCache()  # the newest entries, so steady-state peeks stay in memory

    # -- opening ----------------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorcode not in _CORRUPT:
                raise BufferStorageError(str(self.path), f"cannot open: {exc}") from exc
            self._close_db()
            moved = self._quarantine()
            log.error("buffer %s is unreadable (%s): moved it to %s and started a new one", self.path, exc, moved)
            try:
                self._open()
            except sqlite3.Error as again:
                raise BufferStorageError(str(self.path), f"cannot open: {again}") from again
        if self._depth:
            log.info(
                "buffer %s: %d message(s) (%d bytes) from an earlier run will be sent first",
                self.path,
                self._depth,
                self._bytes,
            )

    def _open(self) -> None:
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new, empty file
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning("buffer %s: the file system refused WAL mode (journal_mode=%s)", self.path, mode)
        db.execute(f"PRAGMA synchronous = {'FULL' if self.sync is SyncMode.FULL else 'NORMAL'}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
        elif version != SCHEMA_VERSION:
            raise BufferStorageError(
                str(self.path), f"schema version {version}, but this agent reads version {SCHEMA_VERSION}"
            )
        depth, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
        with self._lock:
            self._depth, self._bytes = depth, size
            self._counters.recovered = depth
            self._oldest = self._head_created()
            self._tail.reset(depth=depth)

    def _quarantine(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                part.rename(Path(f"{target}{suffix}"))
        return target

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise BufferStorageError(str(self.path), "the buffer is not open")
        return self._db

    # -- writing ----------------------------------------------------------------------------------

    def append(self, message: Outbound) -> int | None:
        """Store ``message`` (dropping what the limits require, in the same transaction)."""
        with self._lock:
            self._counters.added += 1
        try:
            # the common case is a single INSERT, its own transaction
            entry_id = self._append_making_room(message) if self._needs_room(message) else self._insert(message)
        except sqlite3.Error as exc:
            with self._lock:
                self._counters.drop(message.message_id, message.readings, why=f"cannot store: {exc}", error=True)
            self._reload_totals()
            return None
        if entry_id is not None:
            with self._lock:
                self._tail.add(entry_id, message)  # only once it is on disk
        return entry_id

    def _needs_room(self, message: Outbound) -> bool:
        max_age = self.limits.max_age
        expired = max_age is not None and self._oldest is not None and self._oldest < self._clock() - max_age
        return expired or message.size > self.limits.max_bytes or self._full_with(message)

    def _append_making_room(self, message: Outbound) -> int | None:
        db = self.db
        limits = self.limits
        db.execute("BEGIN IMMEDIATE")
        try:
            self._expire()
            if message.size > limits.max_bytes:
                self._drop_new(message, "larger than the whole buffer (max_bytes)")
                entry_id = None
            elif self._full_with(message) and limits.when_full is DropPolicy.DROP_NEWEST:
                self._drop_new(message, "buffer full (drop_newest)")
                entry_id = None
            else:
                if self._full_with(message):
                    self._make_room(message)
                entry_id = self._insert(message)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return entry_id

    def _full_with(self, message: Outbound) -> bool:
        return self._depth + 1 > self.limits.max_messages or self._bytes + message.size > self.limits.max_bytes

    def _drop_new(self, message: Outbound, why: str) -> None:
        with self._lock:
            self._counters.drop(message.message_id, message.readings, why=why)

    def _insert(self, message: Outbound) -> int:
        cursor = self.db.execute(
            "INSERT INTO outbox (message_id, topic, created, readings, size, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (message.message_id, message.topic, message.created, message.readings, message.size, message.payload),
        )
        entry_id = cursor.lastrowid
        assert entry_id is not None
        with self._lock:
            self._depth += 1
            self._bytes += message.size
            if self._oldest is None:
                self._oldest = message.created
        return entry_id

    def _make_room(self, message: Outbound) -> None:
        """Drop the oldest entries until ``message`` fits (inside the caller's transaction)."""
        depth, size, last = self._depth, self._bytes, None
        victims: list[tuple[str, int]] = []
        for entry_id, message_id, readings, entry_size in self.db.execute(
            "SELECT id, message_id, readings, size FROM outbox ORDER BY id"
        ):
            if depth + 1 <= self.limits.max_messages and size + message.size <= self.limits.max_bytes:
                break
            depth, size, last = depth - 1, size - entry_size, entry_id
            victims.append((message_id, readings))
        if last is None:
            return
        self.db.execute("DELETE FROM outbox WHERE id <= ?", (last,))
        with self._lock:
            self._tail.drop_through(last)
            for message_id, readings in victims:
                self._counters.drop(message_id, readings, why="buffer full (drop_oldest)")
            self._depth, self._bytes = depth, size
            self._oldest = self._head_created()

    def _expire(self) -> int:
        """Drop the oldest entries while they are older than ``max_age`` (inside a transaction)."""
        if self.limits.max_age is None or self._oldest is None:
            return 0
        cutoff = self._clock() - self.limits.max_age
        if self._oldest >= cutoff:
            return 0
        last = None
        victims: list[tuple[str, int, int]] = []
        for entry_id, message_id, readings, size, created in self.db.execute(
            "SELECT id, message_id, readings, size, created FROM outbox ORDER BY id"
        ):
            if created >= cutoff:
                break
            last = entry_id
            victims.append((message_id, readings, size))
        if last is None:
            return 0
        self.db.execute("DELETE FROM outbox WHERE id <= ?", (last,))
        with self._lock:
            self._tail.drop_through(last)
            for message_id, readings, size in victims:
                self._counters.drop(message_id, readings, why="older than max_age", expired=True)
                self._depth -= 1
                self._bytes -= size
            self._oldest = self._head_created()
        return len(victims)

    def trim(self) -> int:
        """Expire old entries and give free pages back to the file system."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            expired = self._expire()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        if free >= _VACUUM_PAGES:
            db.executescript("PRAGMA incremental_vacuum;")  # execute() would free one page only
        return expired

    def remove(self, ids: Iterable[int], *, sent: bool) -> int:
        """Delete entries by id (acknowledged if ``sent``, else rejected); unknown ids are ignored."""
        wanted = list(ids)
        if not wanted:
            return 0
        db = self.db
        removed = freed = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for first in range(0, len(wanted), _CHUNK):
                chunk = wanted[first : first + _CHUNK]
                marks = ",".join("?" * len(chunk))
                sizes = db.execute(f"DELETE FROM outbox WHERE id IN ({marks}) RETURNING size", chunk).fetchall()  # noqa: S608 - only placeholders
                removed += len(sizes)
                freed += sum(size for (size,) in sizes)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        with self._lock:
            self._depth -= removed
            self._bytes -= freed
            if sent:
                self._counters.sent += removed
            else:
                self._counters.rejected += removed
            self._oldest = self._head_created()
            self._tail.remove(wanted, depth=self._depth)
        return removed

    # -- reading ----------------------------------------------------------------------------------

    def peek_cached(self, limit: int, after: int | None) -> list[Entry] | None:
        """``peek`` from memory, callable from any thread; ``None`` when the disk must be read."""
        with self._lock:
            return self._tail.peek(limit, after)

    def peek(self, limit: int, after: int | None) -> list[Entry]:
        rows: Sequence[tuple[int, str, str, float, int, bytes]] = self.db.execute(
            "SELECT id, topic, message_id, created, readings, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (after if after is not None else -1, limit),
        ).fetchall()
        return [Entry(row[0], Outbound(row[1], bytes(row[5]), row[2], row[3], row[4])) for row in rows]

    def _head_created(self) -> float | None:
        row = self.db.execute("SELECT created FROM outbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def _reload_totals(self) -> None:
        try:
            depth, size = self.db.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
            with self._lock:
                self._depth, self._bytes, self._oldest = depth, size, self._head_created()
                self._tail.reset(depth=-1)  # incomplete until the backlog drains to what it holds
        except sqlite3.Error:
            log.exception("buffer %s: cannot re-read its totals", self.path)

    def depth(self) -> int:
        return self._depth

    def stats(self) -> BufferStats:
        with self._lock:
            return self._counters.stats(depth=self._depth, size=self._bytes, oldest=self._oldest)

    # -- closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("buffer %s: checkpoint at close failed: %s", self.path, exc)
        self._close_db()

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
