"""What the ingester does with each kind of message, apart from batching telemetry:

- :func:`decode` checks size and schema without I/O and returns the message or a :class:`Rejection`;
- :class:`ChannelHandler` stores status, health and gateways' acks one message at a time (they
  are few), and writes dead letters for whole messages refused.

A gateway's health message replaces the one stored for it when it is newer (by its ``at``). A
gateway's ack is attached to the command or configuration version it answers; an ack of something
never sent to that gateway is dead-lettered as ``unknown_ref``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from misto.cloud.control.base import AckSink, parse_config_ref
from misto.cloud.ingest.inbound import InboundMessage
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.storage.base import DeadLetter, DeadLetterKind, Store
from misto.protocol import MAX_PAYLOAD_BYTES, Ack, Channel, DecodeError, Health, Status, Telemetry, codec

log = logging.getLogger(__name__)
M = TypeVar("M", Telemetry, Status, Health, Ack)

#: Dead letters keep at most this much of a payload (an oversize one is cut, and says so).
MAX_DEAD_LETTER_PAYLOAD = MAX_PAYLOAD_BYTES
INGESTED = "telemetry, status, health and ack"
_DECODE_KINDS = frozenset({DeadLetterKind.OVERSIZE, DeadLetterKind.DECODE, DeadLetterKind.SCHEMA})


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a whole message is refused; it becomes one dead letter."""

    kind: DeadLetterKind
    reason: str
    gateway: str | None
    field: str | None = None
    message_id: str | None = None


def decode(message: InboundMessage, gateway: str, cls: type[M]) -> M | Rejection:
    size = len(message.payload)
    if size > MAX_PAYLOAD_BYTES:
        reason = f"payload of {size} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit"
        return Rejection(DeadLetterKind.OVERSIZE, reason, gateway)
    try:
        return codec.decode(message.payload, cls, topic=message.topic)
    except DecodeError as exc:
        kind = DeadLetterKind.SCHEMA if exc.field == "$.schema" else DeadLetterKind.DECODE
        return Rejection(kind, exc.reason, gateway, exc.field)


def mismatch(topic_gateway: str, payload_gateway: str, message_id: str | None) -> Rejection:
    reason = f"payload gateway {payload_gateway!r} differs from the topic's gateway {topic_gateway!r}"
    return Rejection(DeadLetterKind.GATEWAY_MISMATCH, reason, topic_gateway, "$.gateway", message_id)


class ChannelHandler:
    """Stores the non-telemetry channels and dead-letters refused messages; counts both."""

    def __init__(self, store: Store, stats: IngestStats, acks: AckSink | None) -> None:
        self._store = store
        self.stats = stats
        self._acks = acks

    async def handle(self, message: InboundMessage, channel: Channel, gateway: str) -> None:
        if channel is Channel.STATUS:
            await self._status(message, gateway)
        elif channel is Channel.HEALTH:
            await self._health(message, gateway)
        elif channel is Channel.ACK and self._acks is not None:
            await self._ack(message, gateway, self._acks)
        else:
            reason = f"channel {channel.value!r} is not ingested (subscribe only to {INGESTED})"
            await self.reject(message, Rejection(DeadLetterKind.TOPIC, reason, gateway))

    async def _decoded(self, message: InboundMessage, gateway: str, cls: type[M]) -> M | None:
        decoded = decode(message, gateway, cls)
        if isinstance(decoded, Rejection):
            await self.reject(message, decoded)
            return None
        if decoded.gateway != gateway:
            await self.reject(message, mismatch(gateway, decoded.gateway, None))
            return None
        return decoded

    async def _status(self, message: InboundMessage, gateway: str) -> None:
        if not message.payload:
            self.stats.ignored += 1  # the empty message that clears a retained status
            return
        status = await self._decoded(message, gateway, Status)
        if status is None:
            return
        changed = await self._store.set_gateway_status(
            gateway,
            status.state,
            boot=status.boot,
            at=status.at,
            agent_version=status.agent_version,
            received_at=message.received_at,
        )
        if changed:
            self.stats.status_stored += 1
            log.info("gateway %s is %s (boot %s)", gateway, status.state.value, status.boot)
        else:
            self.stats.status_stale += 1

    async def _health(self, message: InboundMessage, gateway: str) -> None:
        health = await self._decoded(message, gateway, Health)
        if health is None:
            return
        if await self._store.set_gateway_health(health, received_at=message.received_at):
            self.stats.health_stored += 1
        else:
            self.stats.health_stale += 1
            log.debug("health of %s at %s is not newer than the stored one; kept the stored one", gateway, health.at)

    async def _ack(self, message: InboundMessage, gateway: str, sink: AckSink) -> None:
        ack = await self._decoded(message, gateway, Ack)
        if ack is None:
            return
        if not await sink.record_ack(gateway, ack, received_at=message.received_at):
            what = "configuration version" if parse_config_ref(ack.ref) is not None else "command"
            reason = f"ack of {ack.ref!r} ({ack.result.value}): no such {what} was sent to gateway {gateway!r}"
            await self.reject(message, Rejection(DeadLetterKind.UNKNOWN_REF, reason, gateway, "$.ref"))
            return
        self.stats.acks_stored += 1
        log.info(
            "gateway %s answered %s: %s%s", gateway, ack.ref, ack.result.value, f" ({ack.detail})" if ack.detail else ""
        )

    async def reject(self, message: InboundMessage, rejection: Rejection) -> None:
        """Dead-letter the whole message with its raw bytes (cut to size)."""
        reason, payload = rejection.reason, message.payload
        if len(payload) > MAX_DEAD_LETTER_PAYLOAD:
            reason += f" (payload kept: first {MAX_DEAD_LETTER_PAYLOAD} of {len(payload)} bytes)"
            payload = payload[:MAX_DEAD_LETTER_PAYLOAD]
        letter = DeadLetter(
            received_at=message.received_at,
            topic=message.topic,
            kind=rejection.kind,
            reason=reason,
            payload=payload,
            gateway=rejection.gateway,
            field=rejection.field,
            message_id=rejection.message_id,
        )
        await self._store.dead_letter(letter)
        if rejection.kind in _DECODE_KINDS:
            self.stats.decode_errors += 1
        self.stats.dead_lettered(rejection.kind, gateway=rejection.gateway)
        field = f"{rejection.field}: " if rejection.field else ""
        log.info("dead-lettered a message on %s (%s): %s%s", message.topic, rejection.kind.value, field, reason)
