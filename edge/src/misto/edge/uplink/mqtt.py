"""The MQTT uplink: the only module that imports paho-mqtt.

Threads: paho's network I/O runs in one thread of ours (``misto-mqtt-<client id>``) that connects,
runs ``client.loop()`` and reconnects with capped exponential backoff and jitter, never giving up.
paho's callbacks run in that thread and only hand events to asyncio with
``loop.call_soon_threadsafe``; everything else (buffer access, publishing, bookkeeping) happens in
one asyncio task, the pump. ``publish()`` is called from the pump; a no-op
``on_socket_register_write`` keeps paho from writing to the socket outside the network thread.

Delivery: the pump publishes the oldest buffer entries at QoS 1, at most ``max_inflight`` at a
time, and commits an entry only once its PUBACK has arrived (``on_publish``; in small batches, see
:mod:`misto.edge.uplink.acks`). A PUBACK with an MQTT v5
failure code (e.g. not authorised) rejects the entry: removed, counted and logged. When the link
drops, the entries in flight stay in the buffer: on the next connect paho's own queue is dropped
and the pump publishes from the oldest unacknowledged entry again (at least once; the ingester
drops repeats by message id).

Replay: entries created before the current connection came up (what waited during an outage, or
was recovered from disk at start) are published at most ``replay_rate`` per second (a token
bucket); entries created while connected go out at once. Order is kept either way.

Direct messages: :meth:`MqttUplink.publish_direct` publishes a message that is not buffered (gateway
health) at QoS 1 when connected, and reports ``False`` when not.

Status: the last will is a retained ``Status(state=offline)`` on ``misto/v1/<gw>/status``; a
retained ``Status(state=online)`` is published after every connect; a clean stop publishes
``offline`` itself before disconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from misto.edge.backoff import Backoff
from misto.edge.buffer.base import Buffer
from misto.edge.clock import Clock
from misto.edge.settings import BrokerSettings
from misto.edge.uplink.acks import AckBatch
from misto.edge.uplink.base import Uplink, UplinkStats
from misto.edge.uplink.events import Acked, Connected, ConnectFailed, Disconnected, Event, Inbound, ThreadExited
from misto.edge.uplink.pacing import TokenBucket
from misto.edge.uplink.tls import tls_context
from misto.protocol import Channel, GatewayState, Status, codec, topics

log = logging.getLogger("misto.edge.uplink")

LOOP_TIMEOUT = 0.5
STABLE_CONNECTION = 10.0
"""A connection that lasted this long resets the reconnect backoff; one that drops sooner (a broker
that accepts and then kicks the client) keeps backing off, so a flapping link is not hammered."""
STATUS_ACK_TIMEOUT = 3.0
COMMIT_DELAY = 0.5
"""Acknowledged entries are committed to the buffer in batches at most this old (see ``acks.py``)."""
THREAD_EXIT_TIMEOUT = 10.0


class MqttUplink(Uplink):
    def __init__(
        self,
        *,
        broker: BrokerSettings,
        gateway_id: str,
        client_id: str,
        boot: str,
        buffer: Buffer,
        clock: Clock,
        agent_version: str = "",
        replay_rate: float = 50.0,
        rng: random.Random | None = None,
    ) -> None:
        self.broker = broker
        self.gateway_id = gateway_id
        self.client_id = client_id
        self.boot = boot
        self.buffer = buffer
        self.clock = clock
        self.agent_version = agent_version
        self.stats = UplinkStats()
        self.status_topic = topics.build(gateway_id, Channel.STATUS)
        self.inbound_topics = (topics.build(gateway_id, Channel.CONFIG), topics.build(gateway_id, Channel.CMD))
        self.inbound: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._window = broker.max_inflight
        self.replay_rate = replay_rate
        self._pace = TokenBucket(rate=replay_rate, burst=max(1.0, min(replay_rate, self._window)))
        self._paced: asyncio.TimerHandle | None = None
        self._up_since = 0.0  # wall-clock time the current connection came up
        jitter_source = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._backoff = Backoff(
            initial=broker.reconnect_delay_min, maximum=broker.reconnect_delay_max, jitter=0.5, rng=jitter_source
        )
        self._v5 = broker.protocol == "5"
        self._client = self._make_client()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connected_at: float | None = None  # network thread only
        self._stopping = threading.Event()
        self._abort = threading.Event()
        # Owned by the event loop:
        self._wake = asyncio.Event()
        self._up = asyncio.Event()
        self._thread_done = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._generation = 0
        self._inflight: dict[int, int] = {}  # paho mid -> buffer entry id
        self._cursor: int | None = None  # highest entry id handed to paho on this connection
        self._acked = AckBatch(max_size=self._window, max_delay=COMMIT_DELAY)
        self._commit_timer: asyncio.TimerHandle | None = None
        self._flush = False  # commit every acknowledgement now (draining at stop)
        self._refused: list[tuple[int, str]] = []
        self._direct_mids: dict[int, tuple[str, asyncio.Future[None]]] = {}  # paho mid -> (what, acked)
        self._status_due = False
        self._failing = False

    # -- set-up ---------------------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self._v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        client.enable_logger(logging.getLogger("misto.edge.uplink.paho"))
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.resolved_password())
        if self.broker.use_tls:
            client.tls_set_context(tls_context(self.broker))
        client.max_inflight_messages_set(self._window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_socket_register_write = _ignore_socket
        keepalive = max(1, round(self.broker.keepalive))
        if self._v5:
            client.connect_async(self.broker.host, self.broker.port, keepalive=keepalive, clean_start=True)
        else:
            client.connect_async(self.broker.host, self.broker.port, keepalive=keepalive)
        return client

    def _status(self, state: GatewayState) -> bytes:
        status = Status(
            schema=1,
            gateway=self.gateway_id,
            state=state,
            boot=self.boot,
            at=self.clock.now(),
            agent_version=self.agent_version,
        )
        return codec.encode(status)

    # -- public API -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    async def wait_connected(self) -> None:
        await self._up.wait()

    def notify(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("uplink already started")
        self._loop = asyncio.get_running_loop()
        self._pump_task = asyncio.create_task(self._pump(), name="mqtt-pump")
        self._thread = threading.Thread(target=self._network_main, name=f"misto-mqtt-{self.client_id}", daemon=True)
        self._thread.start()
        log.info("connecting to %s as %s", self.broker.url, self.client_id)

    async def stop(self, *, drain_timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        await self._drain(drain_timeout)
        if self.connected:
            await self._publish_status(GatewayState.OFFLINE, wait=True)
        for timer in (self._paced, self._commit_timer):
            if timer is not None:
                timer.cancel()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        self._stopping.set()
        self._client.disconnect()
        try:
            await asyncio.wait_for(self._thread_done.wait(), THREAD_EXIT_TIMEOUT)
        except TimeoutError:
            log.error("MQTT network thread did not stop within %ss; abandoning the connection", THREAD_EXIT_TIMEOUT)
            self._abort.set()
            await asyncio.wait_for(self._thread_done.wait(), THREAD_EXIT_TIMEOUT)
        self._thread.join(timeout=1.0)
        if len(self._acked):
            await self.buffer.commit(self._acked.take())
        if depth := self.buffer.depth():
            log.warning("stopped with %d message(s) not acknowledged by the broker", depth)
        log.info("disconnected from %s", self.broker.url)

    async def _drain(self, within: float) -> None:
        self._flush = True
        deadline = asyncio.get_running_loop().time() + within
        while self.connected and self.buffer.depth() and asyncio.get_running_loop().time() < deadline:
            self._wake.set()
            await asyncio.sleep(0.05)

    # -- the network thread ---------------------------------------------------------------------

    def _network_main(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._connection()
                except Exception as exc:  # a bug or an unexpected library error: report it and keep going
                    log.exception("MQTT network thread: unexpected error")
                    self._post(ConnectFailed(f"unexpected {exc.__class__.__name__}: {exc}"))
                if self._connected_at is not None and time.monotonic() - self._connected_at >= STABLE_CONNECTION:
                    self._backoff.reset()
                self._connected_at = None
                if not self._stopping.is_set():
                    self._stopping.wait(self._backoff.next_delay())
        finally:
            sock = self._client.socket()
            if sock is not None:
                sock.close()
            self._post(ThreadExited())

    def _connection(self) -> None:
        """One connection attempt and, if it succeeds, the connection's life."""
        client = self._client
        client.will_set(self.status_topic, self._status(GatewayState.OFFLINE), qos=1, retain=True)
        try:
            client.reconnect()
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake (ssl.SSLError is an OSError)
            self._post(ConnectFailed(f"{exc.__class__.__name__}: {exc}"))
            return
        if self._stopping.is_set():
            client.disconnect()
        connack_deadline = time.monotonic() + self.broker.connect_timeout
        while not self._abort.is_set():
            rc = client.loop(timeout=LOOP_TIMEOUT)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client.socket() is None:
                return  # paho has reported the disconnect through on_disconnect
            if self._connected_at is None and time.monotonic() > connack_deadline:
                # A broker that accepts TCP but never answers CONNECT (overloaded, or one that cannot parse
                # this MQTT version) must not hang the gateway: give up on this attempt and back off.
                self._post(ConnectFailed(f"no CONNACK within {self.broker.connect_timeout:g}s"))
                sock = client.socket()
                if sock is not None:
                    sock.close()
                return

    def _post(self, event: Event) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._handle, event)
        except RuntimeError:  # the event loop has closed: the agent is gone
            log.debug("event after the event loop closed: %r", event)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if reason.is_failure:
            self._post(ConnectFailed(f"broker refused the connection: {reason}"))
            return
        self._connected_at = time.monotonic()
        client.drop_out_messages()  # the pump republishes from the buffer instead
        # The cloud's retained config arrives at every (re)subscription; commands as they come.
        client.subscribe([(topic, 1) for topic in self.inbound_topics])
        self._post(Connected())

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self._post(Disconnected(str(reason)))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._post(Inbound(message.topic, bytes(message.payload)))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any) -> None:
        self._post(Acked(mid, str(reason) if reason.is_failure else None))

    # -- the event loop side --------------------------------------------------------------------

    def _handle(self, event: Event) -> None:
        match event:
            case Connected():
                self._link_up()
            case ConnectFailed(reason):
                self.stats.connect_failures += 1
                if not self._failing:
                    log.warning("cannot connect to %s: %s; retrying with backoff", self.broker.url, reason)
                else:
                    log.debug("still cannot connect to %s: %s", self.broker.url, reason)
                self._failing = True
            case Disconnected(reason):
                self._link_down(reason)
            case Acked(mid, failure):
                self._acknowledged(mid, failure)
            case Inbound(topic, payload):
                self.inbound.put_nowait((topic, payload))
            case ThreadExited():
                self._up.clear()
                self._thread_done.set()
        self._wake.set()

    def _link_up(self) -> None:
        self.stats.connects += 1
        self._generation += 1
        self._inflight.clear()
        self._direct_mids.clear()
        self._cursor = None
        self._status_due = True
        self._failing = False
        self._up_since = self.clock.now().timestamp()
        self._up.set()
        log.info("connected to %s as %s", self.broker.url, self.client_id)

    def _link_down(self, reason: str) -> None:
        if self._up.is_set():
            self.stats.disconnects += 1
            if not self._stopping.is_set():
                log.warning("lost the connection to %s (%s); reconnecting", self.broker.url, reason)
                self._failing = True
        self._up.clear()

    def _acknowledged(self, mid: int, failure: str | None) -> None:
        if (direct := self._direct_mids.pop(mid, None)) is not None:
            what, done = direct
            if failure is not None:
                log.error("broker refused the %s message: %s", what, failure)
            if not done.done():
                done.set_result(None)
        elif (entry_id := self._inflight.pop(mid, None)) is not None:
            if failure is None:
                self._acked.add(entry_id, asyncio.get_running_loop().time())
                self.stats.acknowledged += 1
            else:
                self._refused.append((entry_id, failure))

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._settle()
                if self._status_due and self.connected:
                    self._status_due = False
                    await self._publish_status(GatewayState.ONLINE, wait=False)
                await self._feed()
            except Exception:  # e.g. a buffer that cannot be read: keep the uplink alive and try again
                log.exception("MQTT uplink: error while publishing from the buffer; retrying in 1s")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        due_in = self._acked.due_in(loop.time())
        if due_in is not None and (due_in == 0 or self._flush or self._cursor is None):
            await self.buffer.commit(self._acked.take())
        elif due_in is not None and self._commit_timer is None:
            self._commit_timer = loop.call_later(due_in, self._commit_due)
        if self._refused:
            refused, self._refused = self._refused, []
            for entry_id, reason in refused:
                log.error("broker refused buffer entry %d for good (%s): rejected", entry_id, reason)
            self.stats.rejected += await self.buffer.reject(entry_id for entry_id, _ in refused)

    def _commit_due(self) -> None:
        self._commit_timer = None
        self._wake.set()

    async def _feed(self) -> None:
        while self.connected and len(self._inflight) < self._window:
            generation = self._generation
            entries = await self.buffer.peek(self._window - len(self._inflight), after=self._cursor)
            if not entries or generation != self._generation or not self.connected:
                return
            for entry in entries:
                replay = entry.message.created < self._up_since
                if replay and (wait := self._pace.take(asyncio.get_running_loop().time())) > 0:
                    self._paced = asyncio.get_running_loop().call_later(wait, self._wake.set)
                    return
                info = self._client.publish(entry.message.topic, entry.message.payload, qos=1)
                if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                    log.error("paho refused to queue %s: %s", entry.message.message_id, paho.error_string(info.rc))
                    return
                self._inflight[info.mid] = entry.id
                self._cursor = entry.id
                self.stats.published += 1
                self.stats.replayed += replay

    async def _publish_status(self, state: GatewayState, *, wait: bool) -> None:
        done = self._publish_now("status", self.status_topic, self._status(state), retain=True)
        if wait and done is not None:
            try:
                await asyncio.wait_for(done, STATUS_ACK_TIMEOUT)
            except TimeoutError:
                log.warning("no acknowledgement for the %s status within %ss", state, STATUS_ACK_TIMEOUT)

    def _publish_now(self, what: str, topic: str, payload: bytes, *, retain: bool) -> asyncio.Future[None] | None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("could not publish the %s message: %s", what, paho.error_string(info.rc))
            return None
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._direct_mids[info.mid] = (what, done)
        self.stats.direct += 1
        return done

    async def publish_direct(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        if not self.connected:
            return False
        return self._publish_now(topic.rsplit("/", 1)[-1], topic, payload, retain=retain) is not None


def _ignore_socket(client: paho.Client, userdata: Any, sock: Any) -> None:
    """Registered as ``on_socket_register_write`` so that ``publish()`` only queues: the network
    thread's ``loop()`` does every write (it is woken through paho's internal socket pair)."""
