"""Publishes waiting for the broker's PUBACK, for the MQTT adapter (no MQTT library here).

Each publish is known by the broker session (``generation``) and its packet id (``mid``); the
adapter registers it right after handing it to the client, on the event loop, and resolves it
from the loop when paho reports the PUBACK. A session that ends fails every publish of it.
"""

from __future__ import annotations

import asyncio

from misto.cloud.errors import BrokerUnavailableError, PublishRefusedError

_Key = tuple[int, int]


class PendingPublishes:
    """Futures of publishes not yet acknowledged. Use only on the event loop."""

    def __init__(self) -> None:
        self._waiting: dict[_Key, tuple[str, asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def expect(self, generation: int, mid: int, topic: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[(generation, mid)] = (topic, future)
        return future

    def forget(self, generation: int, mid: int) -> None:
        self._waiting.pop((generation, mid), None)

    def acknowledged(self, generation: int, mid: int, failure: str | None) -> None:
        """The broker answered: ``failure`` is its reason code when it refused the message."""
        entry = self._waiting.pop((generation, mid), None)
        if entry is None:
            return  # timed out and forgotten already, or an earlier session's
        topic, future = entry
        if future.done():
            return
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(PublishRefusedError(topic, f"the broker refused it: {failure}"))

    def fail_all(self, reason: str, *, generation: int | None = None) -> None:
        """The session ended: nothing more will be acknowledged (for ``generation``, or every session)."""
        for key in [k for k in self._waiting if generation is None or k[0] == generation]:
            topic, future = self._waiting.pop(key)
            if not future.done():
                future.set_exception(BrokerUnavailableError(topic, reason))


async def wait_acknowledged(future: asyncio.Future[None], topic: str, timeout_s: float) -> None:
    """Wait for ``future`` at most ``timeout_s``; :class:`BrokerUnavailableError` after that."""
    try:
        await asyncio.wait_for(future, timeout=timeout_s)
    except TimeoutError:
        reason = f"no PUBACK within {timeout_s:g}s (the broker may still deliver it)"
        raise BrokerUnavailableError(topic, reason) from None
