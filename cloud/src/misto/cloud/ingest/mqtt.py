"""The MQTT adapter (with :mod:`.paho_client`, the only modules of misto.cloud that import
paho-mqtt). It subscribes for the ingester and publishes what the cloud sends to gateways
(configurations and commands).

- Persistent session: MQTT 5 with ``clean_start=False`` and a session expiry (or MQTT 3.1.1 with
  ``clean_session=False``), QoS 1 subscriptions, ``manual_ack=True``: the broker keeps what it
  sent until :meth:`MqttSubscriber.ack` is called, which the ingester does after the store has
  committed. Unacknowledged messages come back (DUP set) after a reconnect.
- paho runs on the event loop, not in a thread of its own (:class:`~.paho_client.SocketWatch`),
  with a cheaper receive path (:class:`~.paho_client.FastClient`): received messages reach the
  ingester without a thread hand-off, and acknowledgements go out without a wake-up byte each.
- Back-pressure: at most ``queue_size`` received messages wait in a bounded
  :class:`~misto.cloud.ingest.inbound.InboundQueue`. With MQTT 5 the CONNECT property Receive
  Maximum (``queue_size``, at most 65535) makes the broker stop sending once that many messages are
  unacknowledged, so the queue never fills from one session; the broker keeps the rest in the
  persistent session. With MQTT 3.1.1 (and the embedded broker) there is no such property: when
  the queue is full the adapter stops reading the socket until it is down to half, TCP flow control
  stops the broker, and the broker holds the rest (Mosquitto in the session's queue, sending at
  most ``max_inflight_messages`` unacknowledged). Either way memory stays bounded and nothing is
  dropped.
- A supervisor task connects and reconnects with capped exponential backoff and jitter, forever.
  It logs the switch to failure and the recovery once each, and counts both.
- :meth:`MqttSubscriber.publish` returns when the broker's PUBACK arrives and raises
  :class:`~misto.cloud.errors.BrokerUnavailableError` when there is no connection, the
  connection drops first or no PUBACK comes in time, :class:`~misto.cloud.errors.PublishRefusedError`
  when the broker answers with a failure reason code (MQTT 5; e.g. the ACL denies the topic).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from misto.cloud.errors import BrokerUnavailableError, PublishError
from misto.cloud.ingest.backoff import backoff_delay
from misto.cloud.ingest.inbound import InboundMessage, InboundQueue
from misto.cloud.ingest.link_config import SubscriberConfig
from misto.cloud.ingest.outbound import PendingPublishes, wait_acknowledged
from misto.cloud.ingest.paho_client import FastClient, SocketWatch, client_class
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.settings import MqttVersion

__all__ = ["MqttSubscriber", "SubscriberConfig"]
log = logging.getLogger(__name__)

#: The largest Receive Maximum MQTT 5 allows.
MAX_RECEIVE_MAXIMUM = 65535
_PAHO_LOG = logging.getLogger(f"{__name__}.paho")


class _QuietNormalDisconnect(logging.Filter):
    """paho logs an error when it is asked to loop after the socket is gone; that is normal after a
    disconnect (the supervisor reconnects and logs what matters), so it is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_PAHO_LOG.addFilter(_QuietNormalDisconnect())
_STOP_TIMEOUT_S = 10.0


class MqttSubscriber:
    """A :class:`misto.cloud.ingest.MessageSource` fed by a broker, and the cloud's publisher.

    Use as ``async with MqttSubscriber(...) as source:``; :meth:`start` returns at once and the
    connection is made (and remade) in the background. ``subscriptions`` are topic filters,
    subscribed with QoS 1 at every connect.
    """

    def __init__(
        self,
        config: SubscriberConfig,
        subscriptions: Sequence[str],
        *,
        queue_size: int = 1000,
        stats: IngestStats | None = None,
    ) -> None:
        if not subscriptions:
            raise ValueError("at least one subscription is needed")
        self.config = config
        self.subscriptions = tuple(subscriptions)
        self.stats = stats if stats is not None else IngestStats()
        self._queue = InboundQueue(queue_size)
        self._queue.on_room = self._resume_reading
        self._watch: SocketWatch | None = None  # drives the connected client from the event loop
        v5 = config.protocol is MqttVersion.V5
        self.receive_maximum = min(queue_size, MAX_RECEIVE_MAXIMUM) if v5 else None
        self.stats.backlog = self._queue
        self.stats.receive_maximum = self.receive_maximum
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._session_ended = asyncio.Event()
        self._connected_event = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._generation = 0
        self._session_ok = False
        self._paused = False
        self._failing_since: float | None = None
        self._pending = PendingPublishes()
        self.last_error: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> MqttSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._supervisor is not None:
            raise RuntimeError("subscriber already started")
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="misto-mqtt-connect")
        self._supervisor = asyncio.create_task(self._supervise(), name="misto-mqtt-supervisor")

    def pause(self) -> None:
        """Stop handing over new messages (they stay with the broker, unacknowledged)."""
        self._paused = True

    @property
    def paused(self) -> bool:
        return self._paused

    async def stop(self) -> None:
        """Disconnect, keeping the broker session: unacknowledged messages are delivered next time."""
        if self._supervisor is None or self._stop_event.is_set():
            return
        self.pause()
        self._stop_event.set()
        client = self._client
        if client is not None and client.is_connected():
            client.disconnect()  # queued after the acks already sent; the loop's writer flushes both
        else:
            self._session_ended.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._supervisor), timeout=_STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("MQTT subscriber did not stop within %.0fs; closing the socket", _STOP_TIMEOUT_S)
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        assert self._executor is not None
        if self._watch is not None:
            self._watch.close()
        self._client = None
        self._executor.shutdown(wait=True)
        self._set_connected(connected=False)
        self._pending.fail_all("the MQTT link was stopped before the broker acknowledged")

    @property
    def connected(self) -> bool:
        return self._connected_event.is_set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once subscribed to the broker; False if ``timeout_s`` passed first."""
        try:
            await asyncio.wait_for(self._connected_event.wait(), timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    # -- MessageSource -----------------------------------------------------------------------

    async def get(self) -> InboundMessage:
        return await self._queue.get()

    def get_nowait(self) -> InboundMessage | None:
        return self._queue.get_nowait()

    async def wait(self, timeout_s: float) -> bool:
        return await self._queue.wait(timeout_s)

    @property
    def capacity(self) -> int | None:
        return self.receive_maximum

    @property
    def queue_depth(self) -> int:
        return self._queue.depth()

    def ack(self, message: InboundMessage) -> None:
        client = self._client
        if message.qos == 0:
            return
        if client is None or message.generation != self._generation:
            log.debug("not acknowledging mid %d of an earlier session; the broker redelivers it", message.mid)
            return
        rc = client.ack(message.mid, message.qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("acknowledging mid %d failed (%s); the broker redelivers it", message.mid, paho.error_string(rc))

    # -- publishing ----------------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        message_expiry_s: int | None = None,
        timeout_s: float | None = None,
    ) -> None:
        """Publish and wait for the broker's acknowledgement (PUBACK for QoS 1).

        ``message_expiry_s``: the broker drops the message if it cannot deliver it in time (MQTT 5
        only; ignored on 3.1.1). ``timeout_s``: how long to wait for the PUBACK (default
        ``config.publish_timeout_s``).
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
        client = self._client
        if client is None or not self.connected or self._stop_event.is_set():
            self.stats.publish_failures += 1
            why = f" ({self.last_error})" if self.last_error else ""
            raise BrokerUnavailableError(topic, f"not connected to the MQTT broker {self.config.address}{why}")
        properties = None
        if message_expiry_s is not None and self.config.protocol is MqttVersion.V5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.MessageExpiryInterval = message_expiry_s
        generation = self._generation
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.stats.publish_failures += 1
            raise BrokerUnavailableError(topic, f"the MQTT client could not send it: {paho.error_string(info.rc)}")
        # Registered before the next await: paho's PUBACK callback reaches the loop only after it.
        future = self._pending.expect(generation, info.mid, topic)
        try:
            await wait_acknowledged(
                future, topic, timeout_s if timeout_s is not None else self.config.publish_timeout_s
            )
        except PublishError:
            self.stats.publish_failures += 1
            raise
        finally:
            self._pending.forget(generation, info.mid)
        self.stats.published += 1

    # -- connection supervisor (event loop) --------------------------------------------------

    def _new_client(self) -> paho.Client:
        cfg = self.config
        v5 = cfg.protocol is MqttVersion.V5
        client = client_class()(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            clean_session=None if v5 else False,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.enable_logger(_PAHO_LOG)
        client.user_data_set(self._generation)  # the session each callback belongs to
        client.connect_timeout = cfg.connect_timeout_s
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            client.tls_set(ca_certs=str(cfg.ca_file) if cfg.ca_file is not None else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        if isinstance(client, FastClient):
            client.raw_publish = self._on_raw_publish
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        return client

    async def _supervise(self) -> None:
        """Connect, wait for the session to end, back off, repeat. Each attempt uses a new paho
        client (its sockets are closed with it), so nothing of a lost session is reused."""
        loop = asyncio.get_running_loop()
        assert self._executor is not None
        executor = self._executor
        attempt = 0
        while not self._stop_event.is_set():
            self._session_ended.clear()
            self._session_ok = False
            self._generation += 1
            client = self._client = self._new_client()
            try:
                await loop.run_in_executor(executor, self._open_socket, client)
            except (OSError, ValueError) as exc:
                self._client = None
                attempt += 1
                self._connection_failed(f"cannot connect: {exc}")
                await self._pause_before_retry(attempt)
                continue
            if self._stop_event.is_set():
                client.disconnect()
                SocketWatch(client, loop).close()
                break
            watch = self._watch = SocketWatch(client, loop)
            if not watch.start():
                self._session_ended.set()
            try:
                await self._session_ended.wait()
            finally:
                watch.close()
            if self._stop_event.is_set():
                break
            self._client = None
            # After a session that worked, retry soon; after a refusal, back off further.
            attempt = 1 if self._session_ok else attempt + 1
            await self._pause_before_retry(attempt)

    def _open_socket(self, client: paho.Client) -> None:
        cfg = self.config
        if cfg.protocol is MqttVersion.V5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = cfg.session_expiry_s
            properties.ReceiveMaximum = self.receive_maximum
            client.connect(cfg.host, cfg.port, cfg.keepalive_s, clean_start=False, properties=properties)
        else:
            client.connect(cfg.host, cfg.port, cfg.keepalive_s)

    async def _pause_before_retry(self, attempt: int) -> None:
        delay = backoff_delay(attempt, base_s=self.config.reconnect_min_s, cap_s=self.config.reconnect_max_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), timeout=delay)

    def _connection_failed(self, reason: str) -> None:
        self.last_error = reason
        self.stats.connection_failures += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            log.warning("MQTT broker %s: %s; retrying with backoff", self.config.address, reason)
        else:
            log.debug("MQTT broker %s: %s (failure %d)", self.config.address, reason, self.stats.connection_failures)

    def _set_connected(self, *, connected: bool) -> None:
        self.stats.connected = connected
        if connected:
            self._connected_event.set()
        else:
            self._connected_event.clear()

    # -- paho callbacks (on the event loop, from the socket's readiness) --------------------------

    def _call_in_loop(self, callback: Callable[..., None], *args: object) -> None:
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the process is going down
            log.debug("event loop closed; dropping a callback from the MQTT thread")

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._call_in_loop(self._refused, str(reason_code))
            return
        self._session_ok = True
        v5 = self.config.protocol is MqttVersion.V5
        if v5:
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            result, _ = client.subscribe([(topic, options) for topic in self.subscriptions])
        else:
            result, _ = client.subscribe([(topic, 1) for topic in self.subscriptions])
        self._call_in_loop(self._session_started, flags.session_present)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._call_in_loop(self._subscribe_failed, paho.error_string(result))
            client.disconnect()  # start over: a session without its subscriptions is no use

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        pairs = zip(self.subscriptions, reason_codes, strict=False)
        failed = [f"{topic}: {code}" for topic, code in pairs if code.is_failure]
        if failed:
            self._call_in_loop(self._subscribe_failed, "; ".join(failed))
        self._call_in_loop(self._subscribed)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._call_in_loop(self._disconnected, str(reason_code), userdata)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        failure = str(reason_code) if reason_code.is_failure else None
        self._call_in_loop(self._pending.acknowledged, userdata, mid, failure)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        header = (msg.qos << 1) | (0x08 if msg.dup else 0) | (0x01 if msg.retain else 0)
        self._on_raw_publish(msg.topic, bytes(msg.payload), msg.mid, header)

    def _on_raw_publish(self, topic: str, payload: bytes, mid: int, header: int) -> None:
        """A received PUBLISH (``header``: its fixed header byte, with QoS, DUP and RETAIN)."""
        if self._paused:
            return  # not acknowledged: the broker keeps it
        inbound = InboundMessage(topic, payload, mid, (header & 0x06) >> 1, bool(header & 0x01), bool(header & 0x08),
                                 datetime.now(UTC), self._generation)  # fmt: skip
        if not self._queue.put(inbound) and self._watch is not None:
            self._watch.pause_reading()  # the queue is full: the broker holds the rest

    def _resume_reading(self) -> None:
        if self._watch is not None and self._watch.client is self._client:
            self._watch.resume_reading()

    # -- the same events, back on the event loop ------------------------------------------------

    def _session_started(self, session_present: bool) -> None:
        self.stats.connects += 1
        self.last_error = None
        if self._failing_since is not None:
            log.info("MQTT broker %s reachable again after %.1fs; subscribed (session present: %s)",
                     self.config.address, time.monotonic() - self._failing_since, session_present)  # fmt: skip
            self._failing_since = None
        else:
            log.info("connected to MQTT broker %s as %s (session present: %s)",
                     self.config.address, self.config.client_id, session_present)  # fmt: skip

    def _subscribed(self) -> None:
        self._set_connected(connected=True)

    def _refused(self, reason: str) -> None:
        self._connection_failed(f"the broker refused the connection: {reason} (check broker.username/password)")

    def _subscribe_failed(self, reason: str) -> None:
        self.stats.subscribe_failures += 1
        log.error("MQTT subscription refused by %s: %s", self.config.address, reason)

    def _disconnected(self, reason: str, generation: int) -> None:
        self._pending.fail_all(
            f"the connection to the broker was lost before its PUBACK ({reason}); the broker may still deliver it",
            generation=generation,
        )
        was_connected = self.connected
        self._set_connected(connected=False)
        if was_connected and not self._stop_event.is_set():
            self._connection_failed(f"connection lost: {reason}")
        self._session_ended.set()
