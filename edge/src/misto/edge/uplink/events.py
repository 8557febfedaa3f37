"""What the MQTT network thread tells the event loop (posted with ``call_soon_threadsafe``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Connected:
    pass


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    reason: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class Acked:
    mid: int
    failure: str | None


@dataclass(frozen=True, slots=True)
class ThreadExited:
    pass


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message from the cloud on one of the gateway's own topics (config, cmd)."""

    topic: str
    payload: bytes


Event = Connected | ConnectFailed | Disconnected | Acked | ThreadExited | Inbound
