"""The in-memory buffer: bounded, fast, and lost when the agent stops."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable

from misto.edge.buffer.base import Buffer, BufferStats, Entry, Outbound

log = logging.getLogger("misto.edge.buffer")


class MemoryBuffer(Buffer):
    def __init__(self, *, max_messages: int) -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        self.max_messages = max_messages
        self._entries: OrderedDict[int, Outbound] = OrderedDict()
        self._next_id = 1
        self._added = self._sent = self._rejected = self._dropped = 0

    async def append(self, message: Outbound) -> int:
        entry_id = self._next_id
        self._next_id += 1
        self._entries[entry_id] = message
        self._added += 1
        while len(self._entries) > self.max_messages:
            _, dropped = self._entries.popitem(last=False)
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning(
                    "buffer full (%d messages): dropped the oldest, %s; %d dropped so far",
                    self.max_messages,
                    dropped.message_id,
                    self._dropped,
                )
        return entry_id

    async def peek(self, limit: int, *, after: int | None = None) -> list[Entry]:
        found: list[Entry] = []
        for entry_id, message in self._entries.items():
            if len(found) >= limit:
                break
            if after is None or entry_id > after:
                found.append(Entry(entry_id, message))
        return found

    async def commit(self, ids: Iterable[int]) -> int:
        removed = sum(1 for i in ids if self._entries.pop(i, None) is not None)
        self._sent += removed
        return removed

    async def reject(self, ids: Iterable[int]) -> int:
        removed = sum(1 for i in ids if self._entries.pop(i, None) is not None)
        self._rejected += removed
        return removed

    def depth(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        return None

    def stats(self) -> BufferStats:
        return BufferStats(self._added, self._sent, self._rejected, self._dropped, len(self._entries))
