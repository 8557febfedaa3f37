"""What the MQTT adapter hands to the ingester: a received message, the way to acknowledge it, and
the bounded queue between the adapter's network thread and the event loop (no MQTT library here)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
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
    """A bounded FIFO from one producer thread (the MQTT network thread) to the event loop.

    :meth:`put` blocks the producer while ``maxsize`` messages wait, so memory stays bounded and the
    broker (whose messages are then not read) holds the rest. The consumer side is async and
    cancellation-safe: :meth:`wait` takes nothing, :meth:`get_nowait` takes one. The event loop is
    woken only when the consumer waits for an empty queue, not once per message.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[InboundMessage] = deque()
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the consumer runs on (needed before :meth:`put` is called)."""
        self._loop = loop

    def __len__(self) -> int:
        return len(self._items)

    def depth(self) -> int:
        return len(self._items)

    def oldest_received_at(self) -> datetime | None:
        """When the message at the head of the queue was received (None if empty)."""
        try:
            return self._items[0].received_at
        except IndexError:
            return None

    # -- producer (any thread) ---------------------------------------------------------------

    def put(self, message: InboundMessage, timeout_s: float) -> bool:
        """Append ``message``, waiting at most ``timeout_s`` for room; False (not added) if full."""
        with self._not_full:
            if len(self._items) >= self.maxsize and not self._not_full.wait_for(
                lambda: len(self._items) < self.maxsize, timeout=timeout_s
            ):
                return False
            self._items.append(message)
            waiter, self._waiter = self._waiter, None
        if waiter is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the process is going down
                self._loop.call_soon_threadsafe(_wake, waiter)
        return True

    # -- consumer (the event loop) ---------------------------------------------------------

    def get_nowait(self) -> InboundMessage | None:
        with self._lock:
            if not self._items:
                return None
            message = self._items.popleft()
            self._not_full.notify()
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
        with self._lock:
            if self._items:
                return
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
