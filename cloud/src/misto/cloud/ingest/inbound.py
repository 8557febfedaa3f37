"""What the MQTT adapter hands to the ingester: a received message, the way to acknowledge it, and
the bounded queue between the adapter and the ingester (no MQTT library here)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One received MQTT message. ``generation`` counts broker sessions: an acknowledgement
    for a message of an earlier session is dropped (the broker redelivers it instead)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    duplicate: bool
    received_at: datetime
    generation: int = 0


class MessageSource(Protocol):
    """Where the ingester takes messages from and acknowledges them after they are stored."""

    async def get(self) -> InboundMessage:
        """The next message; waits until one arrives."""
        ...

    def get_nowait(self) -> InboundMessage | None:
        """The next message already received, if any (also used to drain at shutdown)."""
        ...

    async def wait(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for a message to be ready (taking none); True if one is."""
        ...

    def ack(self, message: InboundMessage) -> None:
        """Acknowledge ``message`` to the broker: it is stored or dead-lettered."""
        ...

    @property
    def capacity(self) -> int | None:
        """At most this many messages are handed over and not yet acknowledged (the broker's flow
        control), so waiting for more than that in one batch is pointless; None if unknown."""
        ...


class InboundQueue:
    """A bounded FIFO between the MQTT adapter and the ingester, both on the event loop's thread.

    :meth:`put` appends and says whether there is still room; when there is not, the producer stops
    reading the socket (so memory stays bounded and the broker holds the rest) until ``on_room``
    is called, once the consumer has taken the queue down to half. The consumer side is async and
    cancellation-safe: :meth:`wait` takes nothing, :meth:`get_nowait` takes one. A waiting consumer
    is woken once per burst of messages, not once per message, and without a thread hand-off.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[InboundMessage] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._resume_at = maxsize // 2
        #: Called (on the event loop) when the queue, having been full, is down to half.
        self.on_room: Callable[[], None] | None = None
        self._was_full = False

    def __len__(self) -> int:
        return len(self._items)

    def depth(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def oldest_received_at(self) -> datetime | None:
        """When the message at the head of the queue was received (None if empty)."""
        try:
            return self._items[0].received_at
        except IndexError:
            return None

    # -- producer (the event loop) -------------------------------------------------------------

    def put(self, message: InboundMessage) -> bool:
        """Append ``message``; False when the queue is now full (the producer must stop reading).
        The caller never puts into a full queue: it stopped reading when told so."""
        items = self._items
        items.append(message)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if len(items) >= self.maxsize:
            self._was_full = True
            return False
        return True

    # -- consumer (the event loop) ---------------------------------------------------------

    def get_nowait(self) -> InboundMessage | None:
        items = self._items
        if not items:
            return None
        message = items.popleft()
        if self._was_full and len(items) <= self._resume_at:
            self._was_full = False
            if self.on_room is not None:
                self.on_room()
        return message

    async def get(self) -> InboundMessage:
        while True:
            message = self.get_nowait()
            if message is not None:
                return message
            await self._wait_ready()

    async def wait(self, timeout_s: float) -> bool:
        if self._items:
            return True
        if timeout_s <= 0:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await self._wait_ready()
        except TimeoutError:
            return bool(self._items)
        return True

    async def _wait_ready(self) -> None:
        """Until the producer appends. One waiter is shared; a cancelled wait leaves it for the next."""
        if self._items:
            return
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(waiter)
