"""Cloud ingest under faults, every part real: a gateway publishing QoS 1 telemetry through Mosquitto
(persistence on, as shipped) to ``misto-cloud serve`` writing into a real ``influxd``.

Under a steady load, one fault each: ``influxd`` stopped for a while and restarted, the ingester
killed with -9 and restarted (same MQTT client id: its persistent session holds what it had not
acknowledged), Mosquitto restarted. Afterwards InfluxDB must hold exactly the readings published:
every (device, metric, time) once, with its value, none missing and none extra, and the ingester
must have dead-lettered nothing.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from misto.cloud.storage.base import to_ms
from misto.protocol import Reading, Telemetry, codec, topics
from tests.fixtures.chain import Cloud, start_cloud
from tests.fixtures.influxd import InfluxInfo
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
GATEWAY = "gw-test"
DATABASE = "misto_faults"
DEVICES = [f"aq-fault-{i}" for i in range(10)]
METRICS = (("pm25", "ug/m3"), ("pm10", "ug/m3"), ("no2", "ug/m3"), ("o3", "ug/m3"), ("temperature", "Cel"))
MESSAGES = 400  # x 50 readings, paced over about 8 s
RATE_PER_S = 50
Triple = tuple[str, str, int]


def _message(seq: int, base: datetime) -> Telemetry:
    ts = base + timedelta(seconds=seq)
    readings = [
        Reading(device=device, metric=metric, value=float((seq * 7 + d * 3 + m) % 500) / 10, unit=unit, ts=ts)
        for d, device in enumerate(DEVICES)
        for m, (metric, unit) in enumerate(METRICS)
    ]
    return Telemetry(schema=1, gateway=GATEWAY, boot="faults", seq=seq, sent_at=ts, readings=readings)


class Load:
    """The gateway: a persistent MQTT 5 session publishing QoS 1 and reconnecting on its own. Like the
    agent's buffer, it publishes again whatever the broker has not acknowledged (a publish made while
    the broker is down is refused at once); the ingester drops the copies by message id."""

    def __init__(self, broker: BrokerInfo) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="faults-gateway", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(GATEWAY, broker.users[GATEWAY])
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(broker.host, broker.port, keepalive=5, clean_start=False, properties=props)
        self.client.loop_start()
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.expected: dict[Triple, float] = {}
        self.payloads: dict[int, bytes] = {}
        self._mids: dict[int, int] = {}  # mid -> seq
        self._acked: set[int] = set()
        self._early: dict[int, bool] = {}  # mid -> acknowledged without failure, seen before its mapping
        self._lock = threading.Lock()
        self.published = 0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults-load", daemon=True)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        failed = bool(getattr(reason, "is_failure", False))
        with self._lock:
            seq = self._mids.pop(mid, None)
            if seq is None:  # acknowledged before _send mapped it
                self._early[mid] = not failed
            elif not failed:
                self._acked.add(seq)

    def _send(self, seq: int) -> None:
        # Our lock is not held across publish(): paho calls _on_publish holding its own locks.
        info = self.client.publish(topics.build(GATEWAY, topics.Channel.TELEMETRY), self.payloads[seq], qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._mids[info.mid] = seq
            elif early:
                self._acked.add(seq)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        for seq in range(MESSAGES):
            message = _message(seq, self.base)
            for r in message.readings:
                self.expected[(r.device, r.metric, to_ms(r.ts))] = r.value
            self.payloads[seq] = codec.encode(message)
            self._send(seq)
            self.published += 1
            delay = began + (seq + 1) / RATE_PER_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.done.set()

    def unacknowledged(self) -> list[int]:
        with self._lock:
            return [seq for seq in self.payloads if seq not in self._acked]

    def wait_acknowledged(self, deadline_s: float) -> None:
        assert self.done.wait(deadline_s), "the load did not finish publishing"

        def all_acknowledged() -> bool:
            missing = self.unacknowledged()
            if missing and self.client.is_connected():
                with self._lock:
                    in_flight = set(self._mids.values())
                for seq in missing:
                    if seq not in in_flight:
                        self._send(seq)
            return not missing

        wait_until(all_acknowledged, deadline_s=deadline_s, what="the broker to acknowledge every publish")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored(influxd: InfluxInfo) -> dict[Triple, float]:
    """Every reading in the raw retention policy, as (device, metric, ms) -> value."""
    found: dict[Triple, float] = {}
    for result in influxd.query('SELECT * FROM "raw"."air"', db=DATABASE):
        for series in result.get("series", []):
            columns = series["columns"]
            for row in series["values"]:
                record = dict(zip(columns, row, strict=True))
                for metric, _ in METRICS:
                    if record.get(metric) is not None:
                        found[(record["device"], metric, int(record["time"]))] = float(record[metric])
    return found


@pytest.fixture
def ingest_service(tmp_path: Path, mosquitto: BrokerInfo, influxd: InfluxInfo) -> Iterator[Callable[[], Cloud]]:
    """Starts (and restarts) the same ingester: same client id, port and token, influx backend."""
    client_id, port, token = f"faults-ingester-{secrets.token_hex(3)}", free_port(), secrets.token_urlsafe(24)
    store = {"backend": "influx", "url": influxd.url, "database": DATABASE, "retry_deadline_s": 3600}
    started: list[Cloud] = []
    (tmp_path / "cloud").mkdir()

    def start() -> Cloud:
        cloud = start_cloud(tmp_path / "cloud", mosquitto, extra={"store": store}, client_id=client_id,
                            port=port, token=token)  # fmt: skip
        started.append(cloud)
        return cloud

    yield start
    for cloud in started:
        cloud.process.stop()


def _assert_exact(cloud: Cloud, influxd: InfluxInfo, load: Load) -> None:
    wait_until(lambda: len(stored(influxd)) >= len(load.expected), deadline_s=90, what="every reading in InfluxDB")
    found = stored(influxd)
    missing = load.expected.keys() - found.keys()
    extra = found.keys() - load.expected.keys()
    assert not missing, f"{len(missing)} readings lost, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} readings nobody sent, e.g. {sorted(extra)[:3]}"
    wrong = [k for k, v in load.expected.items() if found[k] != v]
    assert not wrong, f"{len(wrong)} readings with another value, e.g. {wrong[:3]}"
    health = cloud.get("/health")
    assert sum(health["ingester"]["dead_letters"].values()) == 0, health["ingester"]["dead_letters"]


@contextlib.contextmanager
def _under_load(broker: BrokerInfo) -> Iterator[Load]:
    """The gateway publishing, a quarter of its load already sent; disconnected afterwards."""
    load = Load(broker)
    try:
        load.start()
        wait_until(lambda: load.published >= MESSAGES // 4, deadline_s=30, what="a quarter of the load published")
        yield load
    finally:
        load.close()


def _while_down(load: Load, messages: int) -> None:
    """Let the fault last while the load publishes ``messages`` more (about 1 s per 50)."""
    target = load.published + messages
    wait_until(lambda: load.published >= target, deadline_s=30, what=f"{messages} messages published during the fault")


def test_influxd_outage_under_load_loses_and_doubles_nothing(
    mosquitto: BrokerInfo, influxd: InfluxInfo, ingest_service: Callable[[], Cloud]
) -> None:
    cloud = ingest_service()
    with _under_load(mosquitto) as load:
        influxd.stop()
        _while_down(load, 150)  # the outage: the load goes on, the ingester keeps its batch unacknowledged
        assert cloud.process.alive(), "the ingester must ride out a database outage"
        influxd.start()
        load.wait_acknowledged(60)
        _assert_exact(cloud, influxd, load)
        log = cloud.process.log_text()
        # the switch to failure ("unreachable", or "did not answer" when a request was cut off
        # mid-way) and the recovery are both logged
        assert "; retrying" in log, "the outage was never noticed"
        assert "answers again" in log, "the recovery was never noticed"


def test_ingester_killed_under_load_loses_nothing(
    mosquitto: BrokerInfo, influxd: InfluxInfo, ingest_service: Callable[[], Cloud]
) -> None:
    first = ingest_service()
    with _under_load(mosquitto) as load:
        first.process.kill9()
        _while_down(load, 50)  # the broker keeps queueing for the session meanwhile
        second = ingest_service()
        load.wait_acknowledged(60)
        _assert_exact(second, influxd, load)


def test_mosquitto_restart_under_load_loses_nothing(
    mosquitto: BrokerInfo, influxd: InfluxInfo, ingest_service: Callable[[], Cloud]
) -> None:
    cloud = ingest_service()
    with _under_load(mosquitto) as load:
        mosquitto.stop()
        _while_down(load, 50)  # publishes refused meanwhile are sent again after the reconnect
        mosquitto.start()
        load.wait_acknowledged(90)
        _assert_exact(cloud, influxd, load)
        assert cloud.get("/health")["ingester"]["connects"] >= 2, "the ingester never reconnected"
