"""Errors raised by the protocol package. Each carries the data a caller needs to dead-letter it."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by ``misto.protocol``."""


class TopicError(ProtocolError):
    """A topic string does not follow the Misto topic scheme."""

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"topic {topic!r}: {reason}")


class DecodeError(ProtocolError):
    """A payload could not be decoded into a message.

    ``field`` is a JSON path such as ``$.readings[2].value`` (``$`` for the whole payload).
    """

    def __init__(self, reason: str, *, topic: str | None = None, field: str = "$") -> None:
        self.reason = reason
        self.topic = topic
        self.field = field
        where = f" on topic {topic!r}" if topic else ""
        super().__init__(f"{field}: {reason}{where}")
