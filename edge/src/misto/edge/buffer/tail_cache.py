"""The newest entries of a durable buffer, kept in memory too, so that in steady operation (the
uplink publishing what was just appended) ``peek`` needs no trip to the disk and its thread.

The cache holds entries only once they are committed to disk, in id order, up to a bound; it is
*complete* when it holds every entry of the buffer, and only a complete cache answers ``peek``.
After an outage longer than the bound it is incomplete (the oldest entries are on disk only)
until the backlog has drained to what it holds. Not thread-safe: the owner guards it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from misto.edge.buffer.base import Entry, Outbound

MAX_ENTRIES = 256
MAX_BYTES = 2 * 1024 * 1024


class TailCache:
    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, Outbound] = OrderedDict()
        self._bytes = 0
        self.complete = False

    def __len__(self) -> int:
        return len(self._entries)

    def reset(self, *, depth: int) -> None:
        """Forget everything; complete only if the buffer is empty."""
        self._entries.clear()
        self._bytes = 0
        self.complete = depth == 0

    def add(self, entry_id: int, message: Outbound) -> None:
        self._entries[entry_id] = message
        self._bytes += message.size
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size
            self.complete = False

    def drop_through(self, last_id: int) -> None:
        """Forget the entries with ids up to ``last_id`` (the buffer dropped its oldest)."""
        while self._entries:
            first = next(iter(self._entries))
            if first > last_id:
                break
            self._bytes -= self._entries.pop(first).size

    def remove(self, ids: Iterable[int], *, depth: int) -> None:
        for entry_id in ids:
            message = self._entries.pop(entry_id, None)
            if message is not None:
                self._bytes -= message.size
        if not self.complete and depth == len(self._entries):
            self.complete = True

    def peek(self, limit: int, after: int | None) -> list[Entry] | None:
        """Like ``Buffer.peek``, or ``None`` if the cache cannot tell (incomplete)."""
        if not self.complete:
            return None
        found: list[Entry] = []
        for entry_id, message in self._entries.items():
            if len(found) >= limit:
                break
            if after is None or entry_id > after:
                found.append(Entry(entry_id, message))
        return found
