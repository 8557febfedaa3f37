"""Acknowledgements waiting to be committed to the buffer. Each commit is a trip to the durable
buffer's disk thread, so they are batched: a batch is committed when it holds ``max_size`` entries
or its first acknowledgement is ``max_delay`` seconds old, and always before the pump publishes
from the oldest entry again (a new connection) or drains at stop. A crash in between only means
those messages are sent again, and the ingester drops them by their message ids."""

from __future__ import annotations


class AckBatch:
    def __init__(self, *, max_size: int, max_delay: float) -> None:
        self.max_size = max_size
        self.max_delay = max_delay
        self._ids: list[int] = []
        self._first_at: float | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, entry_id: int, now: float) -> None:
        if self._first_at is None:
            self._first_at = now
        self._ids.append(entry_id)

    def due_in(self, now: float) -> float | None:
        """Seconds until the batch is due (0 if it is), ``None`` if it is empty."""
        if self._first_at is None:
            return None
        if len(self._ids) >= self.max_size:
            return 0.0
        return max(0.0, self._first_at + self.max_delay - now)

    def take(self) -> list[int]:
        ids, self._ids, self._first_at = self._ids, [], None
        return ids
