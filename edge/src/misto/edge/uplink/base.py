"""The uplink interface: takes messages out of the buffer and delivers them to the cloud.

An uplink commits a buffer entry only once the broker has acknowledged it, reconnects by itself
(never giving up) and announces the gateway's status. ``notify`` tells it new entries are waiting.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass
class UplinkStats:
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    published: int = 0
    acknowledged: int = 0
    rejected: int = 0
    replayed: int = 0
    """Of ``published``, entries that had waited for this connection (paced at the replay rate)."""
    direct: int = 0
    """Messages published without the buffer (status, health)."""


class Uplink(ABC):
    stats: UplinkStats
    inbound: asyncio.Queue[tuple[str, bytes]]
    """Messages from the cloud on the gateway's config and cmd topics, in arrival order."""

    @abstractmethod
    async def start(self) -> None:
        """Begin connecting (in the background) and publishing; returns at once."""

    @abstractmethod
    def notify(self) -> None:
        """New entries were appended to the buffer."""

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    @abstractmethod
    async def wait_connected(self) -> None:
        """Return once connected (bound it with ``asyncio.timeout``)."""

    @abstractmethod
    async def publish_direct(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Publish a message that is not buffered (QoS 1) if connected; ``False`` if it was not sent."""

    @abstractmethod
    async def stop(self, *, drain_timeout: float = 5.0) -> None:
        """Deliver what can be delivered within ``drain_timeout``, announce offline, disconnect."""
