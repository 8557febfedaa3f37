"""The load of the ingest benchmark: gateway telemetry messages, encoded as gateways encode them,
and a QoS 1 publisher that paces them and waits for every PUBACK.

Each message carries ``readings_per_message`` readings of air-quality stations (six metrics per
device at one instant, so one InfluxDB point per device and instant). Every reading's series and
timestamp is unique within a run, so nothing is deduplicated away and every reading must be
stored: the bench counts them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from misto.protocol import Reading, Telemetry, codec, topics

# metric, unit, low, high: values sweep inside the vocabulary's physical range
AIR_METRICS = (
    ("pm25", "ug/m3", 4.0, 80.0),
    ("pm10", "ug/m3", 6.0, 130.0),
    ("no2", "ug/m3", 5.0, 90.0),
    ("o3", "ug/m3", 10.0, 120.0),
    ("temperature", "Cel", -5.0, 32.0),
    ("relativeHumidity", "1", 0.3, 0.95),
)


@dataclass(frozen=True, slots=True)
class LoadShape:
    gateways: int
    devices_per_gateway: int
    readings_per_message: int

    @property
    def metrics_per_device(self) -> int:
        return min(len(AIR_METRICS), self.readings_per_message)


def gateway_id(index: int) -> str:
    return f"bench-gw-{index:03d}"


def device_id(gateway: int, device: int) -> str:
    return f"bench-gw-{gateway:03d}-aq-{device:04d}"


class MessageMaker:
    """Telemetry messages round-robin over gateways; each message covers the next devices of its
    gateway. ``stamp`` gives the readings' time: a fixed past grid (backlog) or now (live)."""

    def __init__(self, shape: LoadShape, *, boot: str, live: bool) -> None:
        self.shape = shape
        self.boot = boot
        self.live = live
        self._seq = [0] * shape.gateways
        self._cursor = [0] * shape.gateways
        self._last_ms: dict[str, int] = {}
        self.made = 0
        self.readings = 0
        # a backlog is stamped on a millisecond grid from two hours ago: inside every store's raw
        # retention and the ingester's accepted age, with each message at its own instant
        self._base = datetime.now(UTC) - timedelta(hours=2)

    def _stamp(self, device: str, index: int) -> datetime:
        if not self.live:
            return self._base + timedelta(milliseconds=index)
        now_ms = int(time.time() * 1000)
        ms = max(now_ms, self._last_ms.get(device, 0) + 1)
        self._last_ms[device] = ms
        return datetime.fromtimestamp(ms / 1000, UTC)

    def next(self) -> tuple[str, bytes, int]:
        """(topic, payload, readings in it)."""
        shape = self.shape
        gw = self.made % shape.gateways
        per_device = shape.metrics_per_device
        devices = max(1, shape.readings_per_message // per_device)
        readings: list[Reading] = []
        for _ in range(devices):
            dev_index = self._cursor[gw] % shape.devices_per_gateway
            self._cursor[gw] += 1
            device = device_id(gw, dev_index)
            ts = self._stamp(device, self.made)
            phase = (self.made % 97) / 97
            for metric, unit, low, high in AIR_METRICS[:per_device]:
                readings.append(Reading(device=device, metric=metric, value=round(low + (high - low) * phase, 3),
                                        unit=unit, ts=ts))  # fmt: skip
        message = Telemetry(
            schema=1,
            gateway=gateway_id(gw),
            boot=self.boot,
            seq=self._seq[gw],
            sent_at=datetime.now(UTC),
            readings=readings,
        )
        self._seq[gw] += 1
        self.made += 1
        self.readings += len(readings)
        return topics.build(gateway_id(gw), topics.Channel.TELEMETRY), codec.encode(message), len(readings)

    def take(self, messages: int) -> Iterator[tuple[str, bytes, int]]:
        for _ in range(messages):
            yield self.next()


class Publisher:
    """One MQTT v5 client publishing QoS 1; :meth:`wait_acked` waits for every PUBACK."""

    def __init__(self, host: str, port: int, username: str, password: str, *, client_id: str) -> None:
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self._client.username_pw_set(username, password)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._lock = threading.Condition()
        self._unacked = 0
        self._refused = 0
        self._client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        self._client.connect(host, port, keepalive=30, clean_start=True, properties=props)
        self._client.loop_start()

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        with self._lock:
            self._unacked -= 1
            if getattr(reason, "is_failure", False):
                self._refused += 1
            self._lock.notify_all()

    def publish(self, topic: str, payload: bytes) -> None:
        with self._lock:
            while self._unacked >= 2000:
                self._lock.wait(1.0)
            self._unacked += 1
        self._client.publish(topic, payload, qos=1)

    def wait_acked(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._unacked > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._unacked} publishes not acknowledged within {timeout_s:g}s")
                self._lock.wait(remaining)
        if self._refused:
            raise RuntimeError(f"the broker refused {self._refused} publishes (check the ACL)")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
