"""Helpers of the cloud tests (imported as ``cloud.tests.support``): deadline-bound waits, message
builders, a gateway-side MQTT publisher (paho, as the edge agent uses) and a running ingester."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from misto.cloud.control import AckSink
from misto.cloud.ingest import Ingester, IngestStats
from misto.cloud.ingest.mqtt import MqttSubscriber, SubscriberConfig
from misto.cloud.settings import MqttVersion
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol import (
    BufferHealth,
    Channel,
    DeviceHealth,
    DeviceState,
    Health,
    LinkHealth,
    Reading,
    Telemetry,
    codec,
    topics,
)

T = TypeVar("T")
DEADLINE_S = 10.0
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def eventually(check: Callable[[], Awaitable[T | None]], *, what: str, deadline_s: float = DEADLINE_S) -> T:
    """Await ``check()`` until it returns something truthy; fail after ``deadline_s`` naming ``what``."""
    deadline = time.monotonic() + deadline_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {deadline_s}s waiting for {what} (last: {last!r})")


def telemetry(
    gateway: str = "gw-test",
    *,
    seq: int = 1,
    boot: str = "boot1",
    readings: list[Reading] | None = None,
    at: datetime = T0,
) -> Telemetry:
    return Telemetry(
        schema=1,
        gateway=gateway,
        boot=boot,
        seq=seq,
        sent_at=at,
        readings=readings
        if readings is not None
        else [Reading("aq-1", "pm25", 12.5, "ug/m3", at), Reading("aq-1", "temperature", 21.25, "Cel", at)],
    )


def health(
    gateway: str = "gw-test",
    *,
    at: datetime = T0,
    boot: str = "boot1",
    uptime_s: float = 600.0,
    depth: int = 3,
    states: tuple[DeviceState, ...] = (DeviceState.AVAILABLE, DeviceState.AVAILABLE, DeviceState.UNAVAILABLE),
) -> Health:
    """A gateway's health message with ``depth`` messages buffered and one device per state given."""
    return Health(
        schema=1,
        gateway=gateway,
        boot=boot,
        at=at,
        uptime_s=uptime_s,
        cpu_s=4.25,
        rss_bytes=38_912_000,
        buffer=BufferHealth(
            kind="sqlite",
            depth=depth,
            bytes=depth * 200,
            oldest_age_s=12.5 if depth else None,
            recovered=0,
            added=100 + depth,
            sent=98,
            rejected=0,
            dropped=2,
            dropped_readings=16,
        ),
        link=LinkHealth(connected=True, connects=1, connect_failures=0, disconnects=0, published=101, acknowledged=98),
        devices=[
            DeviceHealth(
                device=f"dev-{index}",
                state=state,
                polls=60,
                failures=0 if state is DeviceState.AVAILABLE else 60,
                readings=480 if state is DeviceState.AVAILABLE else 0,
                suppressed=0,
                last_error=None if state is DeviceState.AVAILABLE else "timeout",
                errors={} if state is DeviceState.AVAILABLE else {"timeout": 60},
            )
            for index, state in enumerate(states)
        ],
        errors={"timeout": 60} if DeviceState.UNAVAILABLE in states else {},
        agent_version="0.1.0",
    )


class Gateway:
    """A gateway-side MQTT client: connects with a password, publishes with QoS 1 waiting for PUBACK,
    and collects what it receives on the topics it subscribed to."""

    def __init__(self, host: str, port: int, username: str | None, password: str | None, *, v5: bool = True) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{username}-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            reconnect_on_failure=False,  # a test gateway that lost its broker just stops
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.suback: list[ReasonCode] = []
        self._received: list[paho.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, rc: ReasonCode, props: object) -> None:
        self.connack = rc

    def _on_subscribe(
        self, client: paho.Client, userdata: object, mid: int, codes: list[ReasonCode], props: object
    ) -> None:
        self.suback = codes

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self._received.append(message)

    def received(self, topic: str | None = None) -> list[paho.MQTTMessage]:
        with self._lock:
            return [m for m in self._received if topic is None or m.topic == topic]

    def subscribe(self, topic: str, deadline_s: float = DEADLINE_S) -> None:
        """Subscribe with QoS 1 and wait for a successful SUBACK."""
        if self.wait_connack().is_failure:
            raise AssertionError(f"gateway connection refused: {self.connack}")
        self.suback = []
        self.client.subscribe(topic, qos=1)
        deadline = time.monotonic() + deadline_s
        while not self.suback:
            if time.monotonic() > deadline:
                raise AssertionError(f"no SUBACK for {topic}")
            time.sleep(0.01)
        assert not self.suback[0].is_failure, f"subscription to {topic} refused: {self.suback[0]}"

    def wait_connack(self, deadline_s: float = DEADLINE_S) -> ReasonCode:
        deadline = time.monotonic() + deadline_s
        while self.connack is None:
            if time.monotonic() > deadline:
                raise AssertionError("no CONNACK from the broker")
            time.sleep(0.01)
        return self.connack

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        if self.wait_connack().is_failure:
            raise AssertionError(f"gateway connection refused: {self.connack}")
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=DEADLINE_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def send(self, message: Telemetry, *, topic_gateway: str | None = None) -> None:
        self.publish(topics.build(topic_gateway or message.gateway, Channel.TELEMETRY), codec.encode(message))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class RunningIngester:
    store: SqliteStore
    subscriber: MqttSubscriber
    ingester: Ingester
    stats: IngestStats
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.subscriber.pause()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.ingester.finish(5.0)
        await self.subscriber.stop()


def subscriber_config(
    host: str,
    port: int,
    username: str | None,
    password: str | None,
    *,
    client_id: str | None = None,
    protocol: MqttVersion = MqttVersion.V5,
) -> SubscriberConfig:
    return SubscriberConfig(
        host=host,
        port=port,
        client_id=client_id or f"ingester-{uuid.uuid4().hex[:8]}",
        username=username,
        password=password,
        protocol=protocol,
        session_expiry_s=300,
        reconnect_min_s=0.05,
        reconnect_max_s=0.5,
        connect_timeout_s=2.0,
    )


async def start_ingester(
    store: SqliteStore,
    config: SubscriberConfig,
    *,
    wrap: Callable[[MqttSubscriber], object] | None = None,
    queue_size: int = 100,
    acks: AckSink | None = None,
) -> RunningIngester:
    """An ingester subscribed to telemetry, status and health, and to acks when ``acks`` is given."""
    stats = IngestStats()
    channels = [Channel.TELEMETRY, Channel.STATUS, Channel.HEALTH] + ([Channel.ACK] if acks is not None else [])
    subscriber = MqttSubscriber(
        config, [topics.subscription(channel) for channel in channels], queue_size=queue_size, stats=stats
    )
    source = wrap(subscriber) if wrap is not None else subscriber
    ingester = Ingester(store, source, acks=acks, stats=stats, retry_min_s=0.05, retry_max_s=0.5)  # type: ignore[arg-type]
    await subscriber.start()
    if not await subscriber.wait_connected(DEADLINE_S):
        await subscriber.stop()
        raise AssertionError(f"ingester did not connect: {subscriber.last_error}")
    task = asyncio.create_task(ingester.run())
    return RunningIngester(store, subscriber, ingester, stats, task)
