"""The store-and-forward buffer: a transaction log between the poll coordinator and the uplink.

The coordinator appends encoded messages; the uplink peeks the oldest ones, publishes them and
ends each with :meth:`Buffer.commit` (the broker acknowledged it) or :meth:`Buffer.reject` (the
broker refused it for good). Nothing else removes an entry, except the bounds: an entry older
than ``max_age`` expires, and when the buffer is full (messages or bytes) the policy drops the
oldest entries or the new one. Every drop is counted, in messages and in readings, and logged.
Entry ids increase with every append and are never reused (not even across restarts of a durable
buffer), so the uplink can peek ``after`` the last id it has in flight.

Accounting: ``recovered + added == sent + rejected + dropped + depth`` at every moment, where
``recovered`` counts the entries a durable buffer found when it was opened.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from misto.protocol import Channel, Telemetry, codec, topics

log = logging.getLogger("misto.edge.buffer")


class DropPolicy(StrEnum):
    """What a full buffer gives up: its oldest entries (keep the present) or the new message (keep the past)."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


class SyncMode(StrEnum):
    """When a durable buffer forces its writes to the storage (fsync)."""

    FULL = "full"
    """Every append is on the storage before ``append`` returns: nothing is lost on power loss."""
    NORMAL = "normal"
    """Appends reach the OS at once (safe if the agent is killed) but the storage only at checkpoints:
    a power loss can lose the last appends. Fewer writes, for worn or slow flash."""


@dataclass(frozen=True, slots=True)
class BufferLimits:
    max_messages: int
    max_bytes: int
    max_age: float | None = None
    """Seconds after its creation when an unsent message expires (``None``: never)."""
    when_full: DropPolicy = DropPolicy.DROP_OLDEST

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1:
            raise ValueError(f"max_messages and max_bytes must be at least 1: {self.max_messages}, {self.max_bytes}")
        if self.max_age is not None and self.max_age <= 0:
            raise ValueError(f"max_age must be positive, got {self.max_age}")


@dataclass(frozen=True, slots=True)
class Outbound:
    """One encoded message waiting to be published at QoS 1."""

    topic: str
    payload: bytes
    message_id: str
    created: float
    """When the message was built, in seconds since the epoch (survives restarts, unlike a monotonic time)."""
    readings: int = 0

    @classmethod
    def telemetry(cls, message: Telemetry) -> Outbound:
        return cls(
            topics.build(message.gateway, Channel.TELEMETRY),
            codec.encode(message),
            message.message_id,
            message.sent_at.timestamp(),
            len(message.readings),
        )

    @property
    def size(self) -> int:
        return len(self.payload)


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
    """Messages never sent: expired, pushed out when full, refused when full, or not storable."""
    depth: int
    bytes: int = 0
    oldest_created: float | None = None
    recovered: int = 0
    dropped_readings: int = 0
    expired: int = 0
    """Of ``dropped``, those that reached ``max_age``."""
    write_errors: int = 0
    """Of ``dropped``, those the buffer could not store (e.g. a disk error)."""


@dataclass
class Counters:
    """The mutable counters behind :class:`BufferStats` (since the buffer was opened)."""

    recovered: int = 0
    added: int = 0
    sent: int = 0
    rejected: int = 0
    dropped: int = 0
    dropped_readings: int = 0
    expired: int = 0
    write_errors: int = 0

    def drop(self, message_id: str, readings: int, *, why: str, expired: bool = False, error: bool = False) -> None:
        self.dropped += 1
        self.dropped_readings += readings
        self.expired += expired
        self.write_errors += error
        if self.dropped == 1 or self.dropped % 1000 == 0 or error:
            log.warning(
                "buffer: dropped %s (%d reading(s)): %s; %d message(s), %d reading(s) dropped so far",
                message_id,
                readings,
                why,
                self.dropped,
                self.dropped_readings,
            )

    def stats(self, *, depth: int, size: int, oldest: float | None) -> BufferStats:
        return BufferStats(
            added=self.added,
            sent=self.sent,
            rejected=self.rejected,
            dropped=self.dropped,
            depth=depth,
            bytes=size,
            oldest_created=oldest,
            recovered=self.recovered,
            dropped_readings=self.dropped_readings,
            expired=self.expired,
            write_errors=self.write_errors,
        )


class Buffer(ABC):
    """A bounded log of outbound messages; one task (the uplink's) reads it."""

    kind: ClassVar[str]

    async def open(self) -> None:  # noqa: B027 - optional: a durable buffer opens (and recovers) its file here
        """Acquire resources; a durable buffer recovers what an earlier run left. Raises :class:`BufferError`."""

    @abstractmethod
    async def append(self, message: Outbound) -> int | None:
        """Add ``message`` at the end; returns its id, or ``None`` if it was dropped (full under
        ``drop_newest``, larger than the whole buffer, or not storable). Counts and logs every drop."""

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
    async def trim(self) -> int:
        """Drop the entries older than ``max_age`` now (appends do it too); returns how many."""

    @abstractmethod
    def depth(self) -> int:
        """Entries not yet committed or rejected."""

    @abstractmethod
    def stats(self) -> BufferStats: ...

    @abstractmethod
    async def close(self) -> None:
        """Release resources (a durable buffer flushes here). Safe to call more than once."""
