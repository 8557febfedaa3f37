"""The ingester: decode, validate, deduplicate, store or dead-letter, and only then acknowledge.

Nothing is dropped silently. A message that cannot be decoded, or whose payload names another
gateway than its topic, is dead-lettered whole; a reading that breaks the metric vocabulary is
dead-lettered on its own while the message's good readings are stored, in the same transaction.
A redelivered message (same ``<gateway>:<boot>:<seq>``) is acknowledged and counted, not stored
again. A store failure that may pass (disk full, locked) is retried with backoff and the message
stays unacknowledged meanwhile; a bug in this module dead-letters the message as ``internal``.
A gateway's health message replaces the one stored for it when it is newer (by its ``at``).
A gateway's ack is attached to the command or configuration version it answers; an ack of
something never sent to that gateway is dead-lettered as ``unknown_ref``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import TypeVar

from misto.cloud.control.base import AckSink, parse_config_ref
from misto.cloud.errors import StoreError
from misto.cloud.ingest.backoff import backoff_delay
from misto.cloud.ingest.inbound import InboundMessage, MessageSource
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.storage.base import DeadLetter, DeadLetterKind, Store
from misto.protocol import (
    MAX_PAYLOAD_BYTES,
    Ack,
    Channel,
    DecodeError,
    Health,
    Reading,
    Status,
    Telemetry,
    TopicError,
    codec,
)
from misto.protocol import topics as topic_scheme
from misto.protocol.vocabulary import METRICS, check_reading

log = logging.getLogger(__name__)
M = TypeVar("M", Telemetry, Status, Health, Ack)

#: Dead letters keep at most this much of a payload (an oversize one is cut, and says so).
MAX_DEAD_LETTER_PAYLOAD = MAX_PAYLOAD_BYTES


class Ingester:
    """Consumes a :class:`MessageSource` into a :class:`Store` (and gateways' acks into ``acks``).
    Run :meth:`run` as a task; at shutdown cancel it, then :meth:`finish` what was already received.
    Without ``acks``, a message on an ``ack`` topic is dead-lettered as not ingested."""

    def __init__(
        self,
        store: Store,
        source: MessageSource,
        *,
        acks: AckSink | None = None,
        stats: IngestStats | None = None,
        retry_min_s: float = 0.2,
        retry_max_s: float = 30.0,
    ) -> None:
        self._store = store
        self._source = source
        self._acks = acks
        self.stats = stats if stats is not None else IngestStats()
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._inflight: asyncio.Future[None] | None = None

    async def run(self) -> None:
        """Process messages until cancelled (or until the store fails permanently).

        Cancelling does not interrupt the message being processed: :meth:`finish` waits for it.
        """
        while True:
            message = await self._source.get()
            inflight = self._inflight = asyncio.ensure_future(self.process(message))
            try:
                await asyncio.shield(inflight)
            finally:
                if inflight.done():  # else cancelled while processing: finish() completes it
                    self._inflight = None

    async def finish(self, deadline_s: float) -> int:
        """After cancelling :meth:`run`: complete the message in flight, then the ones already
        received, for at most ``deadline_s`` in all. Returns how many were completed. Whatever is
        left stays unacknowledged and the broker delivers it again later."""
        deadline = time.monotonic() + deadline_s
        done = 0
        inflight, self._inflight = self._inflight, None
        while (remaining := deadline - time.monotonic()) > 0:
            if inflight is None:
                message = self._source.get_nowait()
                if message is None:
                    break
                inflight = asyncio.ensure_future(self.process(message))
            try:
                await asyncio.wait_for(asyncio.shield(inflight), timeout=remaining)
            except TimeoutError:
                break
            except StoreError as exc:
                log.error("cannot finish the received messages: %s; the broker will redeliver them", exc)
                return done
            inflight = None
            done += 1
        if inflight is not None:
            inflight.cancel()
            await asyncio.gather(inflight, return_exceptions=True)
            log.warning("shutdown deadline of %.1fs reached; the broker will redeliver the rest", deadline_s)
        return done

    async def process(self, message: InboundMessage) -> None:
        """Handle one message (retrying store failures that may pass), then acknowledge it."""
        self.stats.messages_received += 1
        self.stats.last_message_at = datetime.now(UTC)
        attempt = 0
        while True:
            try:
                await self._handle(message)
                break
            except StoreError as exc:
                if not exc.retryable:
                    raise
                attempt += 1
                self.stats.store_retries += 1
                delay = backoff_delay(attempt, base_s=self._retry_min_s, cap_s=self._retry_max_s)
                log_at = logging.WARNING if attempt == 1 else logging.DEBUG
                log.log(log_at, "%s; message on %s kept unacknowledged, retry %d in %.1fs",
                        exc, message.topic, attempt, delay)  # fmt: skip
                await asyncio.sleep(delay)
            except Exception as exc:
                self.stats.internal_errors += 1
                log.exception("ingester failed on a message on %s; dead-lettering it as internal", message.topic)
                await self._dead_letter_internal(message, exc)
                break
        if attempt:
            log.info("store recovered after %d retries", attempt)
        self._source.ack(message)
        self.stats.acked += 1

    async def _handle(self, message: InboundMessage) -> None:
        try:
            topic = topic_scheme.parse(message.topic)
        except TopicError as exc:
            await self._reject(message, DeadLetterKind.TOPIC, exc.reason, gateway=None)
            return
        if topic.channel is Channel.TELEMETRY:
            await self._telemetry(message, topic.gateway_id)
        elif topic.channel is Channel.STATUS:
            await self._status(message, topic.gateway_id)
        elif topic.channel is Channel.HEALTH:
            await self._health(message, topic.gateway_id)
        elif topic.channel is Channel.ACK and self._acks is not None:
            await self._ack(message, topic.gateway_id, self._acks)
        else:
            ingested = "telemetry, status, health and ack"
            reason = f"channel {topic.channel.value!r} is not ingested (subscribe only to {ingested})"
            await self._reject(message, DeadLetterKind.TOPIC, reason, gateway=topic.gateway_id)

    async def _telemetry(self, message: InboundMessage, gateway: str) -> None:
        decoded = await self._decode(message, gateway, Telemetry)
        if decoded is None:
            return
        if decoded.gateway != gateway:
            await self._mismatch(message, gateway, decoded.gateway, decoded.message_id)
            return
        good: list[Reading] = []
        letters: list[DeadLetter] = []
        for index, reading in enumerate(decoded.readings):
            reason = check_reading(reading.metric, reading.unit, reading.value)
            if reason is None:
                good.append(reading)
                continue
            letters.append(
                DeadLetter(
                    received_at=message.received_at,
                    topic=message.topic,
                    kind=DeadLetterKind.VOCABULARY,
                    reason=reason,
                    payload=_reading_json(reading),
                    gateway=gateway,
                    field=f"$.readings[{index}].{_offending_field(reading)}",
                    message_id=decoded.message_id,
                )
            )
        stored = await self._store.write_batch(decoded.message_id, gateway, good, dead_letters=letters)
        if not stored:
            self.stats.duplicates += 1
            log.debug("duplicate message %s (redelivered=%s) acknowledged, not stored again",
                      decoded.message_id, message.duplicate)  # fmt: skip
            return
        self.stats.telemetry_stored += 1
        self.stats.readings_stored += len(good)
        if letters:
            self.stats.dead_lettered(DeadLetterKind.VOCABULARY, len(letters))
            log.info("message %s: %d reading(s) stored, %d dead-lettered (first: %s: %s)",
                     decoded.message_id, len(good), len(letters), letters[0].field, letters[0].reason)  # fmt: skip

    async def _status(self, message: InboundMessage, gateway: str) -> None:
        if not message.payload:
            self.stats.ignored += 1  # the empty message that clears a retained status
            return
        status = await self._decode(message, gateway, Status)
        if status is None:
            return
        if status.gateway != gateway:
            await self._mismatch(message, gateway, status.gateway, None)
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
        health = await self._decode(message, gateway, Health)
        if health is None:
            return
        if health.gateway != gateway:
            await self._mismatch(message, gateway, health.gateway, None)
            return
        if await self._store.set_gateway_health(health, received_at=message.received_at):
            self.stats.health_stored += 1
        else:
            self.stats.health_stale += 1
            log.debug("health of %s at %s is not newer than the stored one; kept the stored one", gateway, health.at)

    async def _ack(self, message: InboundMessage, gateway: str, sink: AckSink) -> None:
        ack = await self._decode(message, gateway, Ack)
        if ack is None:
            return
        if ack.gateway != gateway:
            await self._mismatch(message, gateway, ack.gateway, None)
            return
        if not await sink.record_ack(gateway, ack, received_at=message.received_at):
            what = "configuration version" if parse_config_ref(ack.ref) is not None else "command"
            reason = f"ack of {ack.ref!r} ({ack.result.value}): no such {what} was sent to gateway {gateway!r}"
            await self._reject(message, DeadLetterKind.UNKNOWN_REF, reason, gateway=gateway, field="$.ref")
            return
        self.stats.acks_stored += 1
        log.info(
            "gateway %s answered %s: %s%s", gateway, ack.ref, ack.result.value, f" ({ack.detail})" if ack.detail else ""
        )

    async def _decode(self, message: InboundMessage, gateway: str, cls: type[M]) -> M | None:
        size = len(message.payload)
        if size > MAX_PAYLOAD_BYTES:
            self.stats.decode_errors += 1
            reason = f"payload of {size} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit"
            await self._reject(message, DeadLetterKind.OVERSIZE, reason, gateway=gateway)
            return None
        try:
            return codec.decode(message.payload, cls, topic=message.topic)
        except DecodeError as exc:
            self.stats.decode_errors += 1
            kind = DeadLetterKind.SCHEMA if exc.field == "$.schema" else DeadLetterKind.DECODE
            await self._reject(message, kind, exc.reason, gateway=gateway, field=exc.field)
            return None

    async def _mismatch(
        self, message: InboundMessage, topic_gateway: str, payload_gateway: str, mid: str | None
    ) -> None:
        reason = f"payload gateway {payload_gateway!r} differs from the topic's gateway {topic_gateway!r}"
        await self._reject(
            message, DeadLetterKind.GATEWAY_MISMATCH, reason, gateway=topic_gateway, field="$.gateway", message_id=mid
        )

    async def _reject(
        self,
        message: InboundMessage,
        kind: DeadLetterKind,
        reason: str,
        *,
        gateway: str | None,
        field: str | None = None,
        message_id: str | None = None,
    ) -> None:
        payload = message.payload
        if len(payload) > MAX_DEAD_LETTER_PAYLOAD:
            reason += f" (payload kept: first {MAX_DEAD_LETTER_PAYLOAD} of {len(payload)} bytes)"
            payload = payload[:MAX_DEAD_LETTER_PAYLOAD]
        letter = DeadLetter(
            received_at=message.received_at,
            topic=message.topic,
            kind=kind,
            reason=reason,
            payload=payload,
            gateway=gateway,
            field=field,
            message_id=message_id,
        )
        await self._store.dead_letter(letter)
        self.stats.dead_lettered(kind)
        log.info("dead-lettered a message on %s (%s): %s%s",
                 message.topic, kind.value, f"{field}: " if field else "", reason)  # fmt: skip

    async def _dead_letter_internal(self, message: InboundMessage, exc: Exception) -> None:
        try:
            await self._reject(
                message, DeadLetterKind.INTERNAL, f"{type(exc).__name__}: {exc}", gateway=_topic_gateway(message.topic)
            )
        except Exception:
            log.exception("could not dead-letter the message on %s either; it is acknowledged and lost", message.topic)


def _offending_field(reading: Reading) -> str:
    metric = METRICS.get(reading.metric)
    if metric is None:
        return "metric"
    if reading.unit != metric.unit:
        return "unit"
    return "value"


def _reading_json(reading: Reading) -> bytes:
    document = {
        "device": reading.device,
        "metric": reading.metric,
        "value": reading.value,
        "unit": reading.unit,
        "ts": reading.ts.isoformat().replace("+00:00", "Z"),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _topic_gateway(topic: str) -> str | None:
    try:
        return topic_scheme.parse(topic).gateway_id
    except TopicError:
        return None
