"""The in-memory buffer: bounded, fast, and lost when the agent stops."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from misto.edge.buffer.base import Buffer, BufferLimits, BufferStats, Counters, DropPolicy, Entry, Outbound

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class MemoryBuffer(Buffer):
    kind = "memory"

    def __init__(
        self,
        *,
        max_messages: int,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age: float | None = None,
        when_full: DropPolicy = DropPolicy.DROP_OLDEST,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = BufferLimits(max_messages, max_bytes, max_age, when_full)
        self._clock = clock
        self._entries: OrderedDict[int, Outbound] = OrderedDict()
        self._next_id = 1
        self._bytes = 0
        self._counters = Counters()

    @property
    def max_messages(self) -> int:
        return self.limits.max_messages

    async def append(self, message: Outbound) -> int | None:
        self._expire()
        self._counters.added += 1
        limits = self.limits
        if message.size > limits.max_bytes:
            self._counters.drop(message.message_id, message.readings, why="larger than the whole buffer (max_bytes)")
            return None
        while (
            len(self._entries) + 1 > limits.max_messages or self._bytes + message.size > limits.max_bytes
        ) and self._entries:
            if limits.when_full is DropPolicy.DROP_NEWEST:
                self._counters.drop(message.message_id, message.readings, why="buffer full (drop_newest)")
                return None
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size
            self._counters.drop(oldest.message_id, oldest.readings, why="buffer full (drop_oldest)")
        entry_id = self._next_id
        self._next_id += 1
        self._entries[entry_id] = message
        self._bytes += message.size
        return entry_id

    def _expire(self) -> int:
        if self.limits.max_age is None:
            return 0
        cutoff = self._clock() - self.limits.max_age
        expired = 0
        while self._entries:
            entry_id, oldest = next(iter(self._entries.items()))
            if oldest.created >= cutoff:
                break
            del self._entries[entry_id]
            self._bytes -= oldest.size
            self._counters.drop(oldest.message_id, oldest.readings, why="older than max_age", expired=True)
            expired += 1
        return expired

    async def trim(self) -> int:
        return self._expire()

    async def peek(self, limit: int, *, after: int | None = None) -> list[Entry]:
        found: list[Entry] = []
        for entry_id, message in self._entries.items():
            if len(found) >= limit:
                break
            if after is None or entry_id > after:
                found.append(Entry(entry_id, message))
        return found

    def _remove(self, ids: Iterable[int]) -> int:
        removed = 0
        for entry_id in ids:
            message = self._entries.pop(entry_id, None)
            if message is not None:
                self._bytes -= message.size
                removed += 1
        return removed

    async def commit(self, ids: Iterable[int]) -> int:
        removed = self._remove(ids)
        self._counters.sent += removed
        return removed

    async def reject(self, ids: Iterable[int]) -> int:
        removed = self._remove(ids)
        self._counters.rejected += removed
        return removed

    def depth(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        return None

    def stats(self) -> BufferStats:
        oldest = next(iter(self._entries.values())).created if self._entries else None
        return self._counters.stats(depth=len(self._entries), size=self._bytes, oldest=oldest)
