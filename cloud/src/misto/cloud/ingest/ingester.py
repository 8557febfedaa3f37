"""The ingester: take a batch, decode and validate it, write it, and only then acknowledge it.

A batch is cut at ``max_messages`` messages or ``max_readings`` readings, or when no message is
waiting and ``max_wait_s`` has passed since its first message. All telemetry of a batch is written
with one :meth:`Store.write_messages` call; status, health and ack messages and the dead letters
of refused messages are stored one by one before it. Then every message of the batch is
acknowledged, in order. While a batch is being stored the next one is collected and checked
(two batches at most, stored one after the other, so acknowledgements stay in order).

Nothing is dropped silently. A message that cannot be decoded, or whose payload names another
gateway than its topic, is dead-lettered whole; a reading refused at the door (vocabulary, time
window, device ownership: :mod:`.door`) is dead-lettered on its own while the message's good
readings are stored, in the same write. A redelivered message (same ``<gateway>:<boot>:<seq>``)
is acknowledged and counted, not stored again. A store failure that may pass (disk full, locked,
database down) is retried with capped backoff and the whole batch stays unacknowledged meanwhile
(what was already stored is not stored again); a permanent one stops the ingester; a bug in this
package dead-letters the message as ``internal``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from misto.cloud.control.base import AckSink
from misto.cloud.errors import StoreError
from misto.cloud.ingest.backoff import backoff_delay
from misto.cloud.ingest.channels import ChannelHandler, Rejection, decode, mismatch
from misto.cloud.ingest.door import Door
from misto.cloud.ingest.inbound import InboundMessage, MessageSource
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.storage.base import DeadLetterKind, MessageWrite, Store
from misto.protocol import Channel, Telemetry, Topic, TopicError
from misto.protocol import topics as topic_scheme

log = logging.getLogger(__name__)
#: Parsed topics are remembered (topics repeat: a few per gateway); forgotten past this many.
TOPIC_CACHE_SIZE = 100_000
_IDLE_WAIT_S = 3600.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Batching:
    """When a batch is cut (``ingest.batch_*`` settings)."""

    max_messages: int = 500
    max_readings: int = 5000
    max_wait_s: float = 0.05

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_readings < 1 or self.max_wait_s < 0:
            raise ValueError(f"invalid batching {self}: limits must be >= 1 and the wait >= 0")


@dataclass(slots=True)
class _Item:
    """One message of a batch and what remains to do with it."""

    message: InboundMessage
    gateway: str | None = None
    channel: Channel | None = None  # a non-telemetry message, handled by the ChannelHandler
    write: MessageWrite | None = None  # telemetry to write
    newest: datetime | None = None  # of the readings to write
    rejection: Rejection | None = None  # the whole message is dead-lettered
    done: bool = False  # stored (or dead-lettered): not repeated when the batch is retried

    readings: int = 0  # received in it (written or refused)


class Ingester:
    """Consumes a :class:`MessageSource` into a :class:`Store` (and gateways' acks into ``acks``).
    Run :meth:`run` as a task; at shutdown cancel it, then :meth:`finish` what was already received.
    Without ``acks``, a message on an ``ack`` topic is dead-lettered as not ingested. ``door``
    (default: the metric vocabulary only) decides which readings are refused; ``clock`` is the
    time it judges reading times by."""

    def __init__(
        self,
        store: Store,
        source: MessageSource,
        *,
        acks: AckSink | None = None,
        stats: IngestStats | None = None,
        door: Door | None = None,
        batching: Batching | None = None,
        retry_min_s: float = 0.2,
        retry_max_s: float = 30.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._source = source
        self.stats = stats if stats is not None else IngestStats()
        self._handler = ChannelHandler(store, self.stats, acks)
        self.door = door if door is not None else Door()
        self.batching = batching if batching is not None else Batching()
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._topics: dict[str, Topic | TopicError] = {}
        self._building: list[_Item] | None = None  # the batch being collected, not yet being stored
        self._inflight: tuple[asyncio.Future[None], int] | None = None  # the batch being stored

    async def run(self) -> None:
        """Process batches until cancelled (or until the store fails permanently).

        Cancelling does not interrupt the batch being stored, nor lose the one being collected:
        :meth:`finish` completes both.
        """
        while True:
            items = await self._collect()
            if self._inflight is not None:
                previous = self._inflight[0]
                await asyncio.shield(previous)  # raises a permanent store failure; else cancelled: finish()
                self._inflight = None
            self._building = None
            self._inflight = (asyncio.ensure_future(self._complete(items)), len(items))

    async def finish(self, deadline_s: float) -> int:
        """After cancelling :meth:`run`: complete the batch in flight, then the messages already
        received, for at most ``deadline_s`` in all. Returns how many messages were completed.
        Whatever is left stays unacknowledged and the broker delivers it again later."""
        deadline = time.monotonic() + deadline_s
        done = 0
        inflight, self._inflight = self._inflight, None
        building, self._building = self._building, None
        while (remaining := deadline - time.monotonic()) > 0:
            if inflight is None:
                items = building if building else self._drain()
                building = None
                if not items:
                    break
                inflight = (asyncio.ensure_future(self._complete(items)), len(items))
            try:
                await asyncio.wait_for(asyncio.shield(inflight[0]), timeout=remaining)
            except TimeoutError:
                break
            except StoreError as exc:
                log.error("cannot finish the received messages: %s; the broker will redeliver them", exc)
                return done
            done += inflight[1]
            inflight = None
        if inflight is not None:
            inflight[0].cancel()
            await asyncio.gather(inflight[0], return_exceptions=True)
            log.warning("shutdown deadline of %.1fs reached; the broker will redeliver the rest", deadline_s)
        return done

    async def process(self, message: InboundMessage) -> None:
        """Handle one message as a batch of its own (retrying store failures), then acknowledge it."""
        await self._complete([self._prepare(message, self._clock())])

    # -- collecting a batch ------------------------------------------------------------------

    async def _collect(self) -> list[_Item]:
        source, limits = self._source, self.batching
        max_messages = min(limits.max_messages, source.capacity or limits.max_messages)
        if self._inflight is not None:  # the broker lets the two batches have ``capacity`` in all
            max_messages = max(1, min(max_messages, (source.capacity or max_messages) - self._inflight[1]))
        first = await self._first()
        items = self._building = []
        loop_time = asyncio.get_running_loop().time
        deadline = loop_time() + limits.max_wait_s
        now = self._clock()
        if self.stats.processing_since is None:
            self.stats.processing_since = first.received_at
        item = self._prepare(first, now)
        items.append(item)
        readings = item.readings
        while len(items) < max_messages and readings < limits.max_readings:
            message = source.get_nowait()
            if message is None:
                remaining = deadline - loop_time()
                if remaining <= 0 or not await source.wait(remaining):
                    break
                continue
            item = self._prepare(message, now)
            items.append(item)
            readings += item.readings
        return items

    async def _first(self) -> InboundMessage:
        """The next message; meanwhile, a failure of the batch being stored is raised at once."""
        while True:
            inflight = self._inflight
            if inflight is not None and inflight[0].done():
                self._inflight = None
                inflight[0].result()  # a permanent store failure ends run()
                inflight = None
            if inflight is None:
                return await self._source.get()
            message = self._source.get_nowait()
            if message is not None:
                return message
            ready = asyncio.ensure_future(self._source.wait(_IDLE_WAIT_S))
            either: list[asyncio.Future[Any]] = [ready, inflight[0]]
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()  # waiting takes no message: cancelling it loses none

    def _drain(self) -> list[_Item]:
        """A batch of what is already received, without waiting (at shutdown)."""
        items: list[_Item] = []
        now = self._clock()
        readings = 0
        while len(items) < self.batching.max_messages and readings < self.batching.max_readings:
            message = self._source.get_nowait()
            if message is None:
                break
            items.append(item := self._prepare(message, now))
            readings += item.readings
        if items and self.stats.processing_since is None:
            self.stats.processing_since = items[0].message.received_at
        return items

    def _topic(self, name: str) -> Topic | TopicError:
        topic = self._topics.get(name)
        if topic is None:
            if len(self._topics) >= TOPIC_CACHE_SIZE:
                self._topics.clear()
            try:
                topic = topic_scheme.parse(name)
            except TopicError as exc:
                topic = exc
            self._topics[name] = topic
        return topic

    def _prepare(self, message: InboundMessage, now: datetime) -> _Item:
        """Decode and check a message (no I/O); counted as received here, once."""
        stats = self.stats
        stats.messages_received += 1
        stats.last_message_at = message.received_at
        item = _Item(message)
        try:
            topic = self._topic(message.topic)
            if isinstance(topic, TopicError):
                item.rejection = Rejection(DeadLetterKind.TOPIC, topic.reason, None)
                return item
            item.gateway = topic.gateway_id
            if topic.channel is not Channel.TELEMETRY:
                item.channel = topic.channel
                return item
            decoded = decode(message, topic.gateway_id, Telemetry)
            if isinstance(decoded, Rejection):
                item.rejection = decoded
            elif decoded.gateway != topic.gateway_id:
                item.rejection = mismatch(topic.gateway_id, decoded.gateway, decoded.message_id)
            else:
                item.readings = len(decoded.readings)
                stats.readings_received += item.readings
                admitted = self.door.admit(message, decoded, now)
                item.write, item.newest = admitted.write, admitted.newest
        except Exception as exc:
            stats.internal_errors += 1
            log.exception("ingester failed on a message on %s; dead-lettering it as internal", message.topic)
            item.channel = item.write = None
            item.rejection = _internal(exc, item.gateway)
        return item

    # -- storing a batch ---------------------------------------------------------------------

    async def _complete(self, items: list[_Item]) -> None:
        """Store the batch (retrying failures that may pass), then acknowledge every message."""
        attempt = 0
        while True:
            try:
                await self._store_items(items)
                break
            except StoreError as exc:
                self.stats.store_errors += 1
                if not exc.retryable:
                    raise
                attempt += 1
                self.stats.store_retries += 1
                delay = backoff_delay(attempt, base_s=self._retry_min_s, cap_s=self._retry_max_s)
                log_at = logging.WARNING if attempt == 1 else logging.DEBUG
                log.log(log_at, "%s; %d message(s) kept unacknowledged, retry %d in %.1fs",
                        exc, len(items), attempt, delay)  # fmt: skip
                await asyncio.sleep(delay)
        if attempt:
            log.info("store recovered after %d retries", attempt)
        ack = self._source.ack
        for item in items:
            ack(item.message)
        self.stats.acked += len(items)
        building = self._building
        self.stats.processing_since = building[0].message.received_at if building else None

    async def _store_items(self, items: list[_Item]) -> None:
        writes: list[_Item] = []
        for item in items:
            if item.done:
                continue
            if item.write is not None:
                writes.append(item)
                continue
            try:
                if item.rejection is not None:
                    await self._handler.reject(item.message, item.rejection)
                elif item.channel is not None and item.gateway is not None:
                    await self._handler.handle(item.message, item.channel, item.gateway)
            except StoreError:
                raise
            except Exception as exc:
                await self._internal_failure(item, exc)
            item.done = True
        if writes:
            await self._write(writes)

    async def _write(self, writes: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            results = await self._store.write_messages([item.write for item in writes if item.write is not None])
        except StoreError:
            raise
        except Exception as exc:
            for item in writes:
                await self._internal_failure(item, exc)
                item.done = True
            return
        stats = self.stats
        stats.wrote(sum(len(item.write.readings) for item in writes if item.write is not None),
                    time.perf_counter() - started)  # fmt: skip
        for item, stored in zip(writes, results, strict=True):
            item.done = True
            write = item.write
            assert write is not None
            if not stored:
                stats.duplicates += 1
                log.debug("duplicate message %s (redelivered=%s) acknowledged, not stored again",
                          write.message_id, item.message.duplicate)  # fmt: skip
                continue
            stats.telemetry_stored += 1
            stats.readings_stored += len(write.readings)
            if item.newest is not None and (stats.newest_reading_at is None or item.newest > stats.newest_reading_at):
                stats.newest_reading_at = item.newest
            if write.dead_letters:
                for letter in write.dead_letters:
                    stats.dead_lettered(letter.kind, gateway=write.gateway)
                first = write.dead_letters[0]
                log.info("message %s: %d reading(s) stored, %d dead-lettered (first: %s: %s)", write.message_id,
                         len(write.readings), len(write.dead_letters), first.field, first.reason)  # fmt: skip

    async def _internal_failure(self, item: _Item, exc: Exception) -> None:
        self.stats.internal_errors += 1
        log.error("ingester failed on a message on %s; dead-lettering it as internal", item.message.topic,
                  exc_info=exc)  # fmt: skip
        try:
            await self._handler.reject(item.message, _internal(exc, item.gateway))
        except StoreError:
            raise  # the batch is retried; this message is not marked done
        except Exception:
            log.exception("could not dead-letter the message on %s either; it is acknowledged and lost",
                          item.message.topic)  # fmt: skip


def _internal(exc: Exception, gateway: str | None) -> Rejection:
    return Rejection(DeadLetterKind.INTERNAL, f"{type(exc).__name__}: {exc}", gateway)
