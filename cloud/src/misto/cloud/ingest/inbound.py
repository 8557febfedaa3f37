"""What the MQTT adapter hands to the ingester: a received message and the way to acknowledge it."""

from __future__ import annotations

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
        """The next message already received, if any (used to drain at shutdown)."""
        ...

    def ack(self, message: InboundMessage) -> None:
        """Acknowledge ``message`` to the broker: it is stored or dead-lettered."""
        ...
