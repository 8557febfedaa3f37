"""The store-and-forward buffer: a transaction log between the poll coordinator and the uplink.

The coordinator appends encoded messages; the uplink peeks the oldest ones, publishes them and
ends each with :meth:`Buffer.commit` (the broker acknowledged it) or :meth:`Buffer.reject` (the
broker refused it for good). Nothing else removes an entry, except dropping the oldest when the
buffer is full, which is counted. Entry ids increase with every append and are never reused, so
a durable implementation can keep them across restarts and the uplink can peek ``after`` the last
id it has in flight.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from misto.protocol import Channel, Telemetry, codec, topics


@dataclass(frozen=True, slots=True)
class Outbound:
    """One encoded message waiting to be published at QoS 1."""

    topic: str
    payload: bytes
    message_id: str

    @classmethod
    def telemetry(cls, message: Telemetry) -> Outbound:
        return cls(topics.build(message.gateway, Channel.TELEMETRY), codec.encode(message), message.message_id)


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    message: Outbound


@dataclass(frozen=True, slots=True)
class BufferStats:
    added: int
    sent: int
    rejected: int
    dropped: int
    depth: int


class Buffer(ABC):
    """A bounded log of outbound messages; one task (the uplink's) reads it."""

    @abstractmethod
    async def append(self, message: Outbound) -> int:
        """Add ``message`` at the end; returns its id. Drops (and counts) the oldest entry when full."""

    @abstractmethod
    async def peek(self, limit: int, *, after: int | None = None) -> list[Entry]:
        """Up to ``limit`` oldest entries, only those with an id greater than ``after`` if given."""

    @abstractmethod
    async def commit(self, ids: Iterable[int]) -> int:
        """Remove acknowledged entries (counted as sent); unknown ids are ignored. Returns how many were removed."""

    @abstractmethod
    async def reject(self, ids: Iterable[int]) -> int:
        """Remove entries the broker refused for good (counted as rejected). Returns how many were removed."""

    @abstractmethod
    def depth(self) -> int:
        """Entries not yet committed or rejected."""

    @abstractmethod
    def stats(self) -> BufferStats: ...

    @abstractmethod
    async def close(self) -> None:
        """Release resources (a durable buffer flushes here)."""
