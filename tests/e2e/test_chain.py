"""The whole chain with real parts: simulator (Modbus TCP) -> misto-edge -> Mosquitto (passwords,
ACLs) -> misto-cloud ingester -> SQLite -> HTTP API."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from misto.protocol import Reading, Telemetry, codec, topics
from misto.protocol.codec import MAX_PAYLOAD_BYTES
from tests.fixtures.chain import Chain, Cloud
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import wait_until

pytestmark = pytest.mark.e2e
DEVICES = {"aq-center-1": "aq1", "nm-port-1": "nm1"}


def _latest_by_device(cloud: Cloud) -> dict[str, dict[str, Any]]:
    rows = cloud.get("/api/v1/readings/latest")
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        out.setdefault(row["device"], {})[row["metric"]] = row
    return out


def test_simulated_values_arrive_decoded_at_the_api(chain: Chain, mosquitto: BrokerInfo) -> None:
    sim = chain.simulator(DEVICES)
    cloud = chain.cloud()
    chain.agent(sim)

    def complete() -> dict[str, dict[str, Any]] | None:
        latest = _latest_by_device(cloud)
        served = {d.device_id: sim.values_of(d) for d in sim.devices}
        ok = all(set(served[dev]) <= set(latest.get(dev, {})) for dev in served)
        return latest if ok else None

    latest = wait_until(complete, deadline_s=20, what="every simulated metric at the API")
    for device in sim.devices:
        served = sim.values_of(device)
        assert len(served) >= 3
        for metric, value in served.items():
            row = latest[device.device_id][metric]
            assert math.isclose(row["value"], value, rel_tol=1e-6, abs_tol=1e-9), (device.device_id, metric)
            assert row["gateway"] == "gw-test"
    devices = {d["device"]: d for d in cloud.get("/api/v1/devices")}
    assert set(devices) == set(DEVICES)
    assert devices["aq-center-1"]["gateway"] == "gw-test"
    units = {r["metric"]: r["unit"] for r in devices["aq-center-1"]["readings"]}
    assert units["pm25"] == "ug/m3"
    assert units["relativeHumidity"] == "1"

    now = datetime.now(UTC)
    series = cloud.get(
        "/api/v1/series?device=aq-center-1&metric=pm25&every=1m"
        f"&from={(now - timedelta(minutes=5)).isoformat().replace('+00:00', 'Z')}"
        f"&to={(now + timedelta(minutes=1)).isoformat().replace('+00:00', 'Z')}"
    )
    windows = series["windows"] if isinstance(series, dict) else series
    assert sum(w["count"] for w in windows) >= 1
    pm25 = sim.values_of(sim.devices[0])["pm25"]
    assert all(math.isclose(w["mean"], pm25, rel_tol=1e-6) for w in windows if w["count"])


def _good(gateway: str, seq: int, value: float = 10.0, metric: str = "pm25", unit: str = "ug/m3") -> bytes:
    now = datetime.now(UTC)
    reading = Reading(device="probe-1", metric=metric, value=value, unit=unit, ts=now)
    return codec.encode(Telemetry(schema=1, gateway=gateway, boot="e2e", seq=seq, sent_at=now, readings=[reading]))


def test_malformed_payloads_are_dead_lettered_while_good_data_flows(chain: Chain, mosquitto: BrokerInfo) -> None:
    sim = chain.simulator({"aq-center-1": "aq1"}, freeze=False)
    cloud = chain.cloud()
    chain.agent(sim)
    wait_until(lambda: _latest_by_device(cloud).get("aq-center-1"), deadline_s=20, what="first agent readings")

    topic = topics.build("gw-test", topics.Channel.TELEMETRY)
    valid = _good("gw-test", 1)
    bad: dict[str, bytes] = {
        "invalid-json": b'{"schema": 1, "gateway": ',
        "wrong-type": valid.replace(b'"value":10.0', b'"value":"ten"'),
        "unknown-schema": valid.replace(b'"schema":1', b'"schema":9'),
        "oversize": b" " * (MAX_PAYLOAD_BYTES + 10),
        "unknown-metric": _good("gw-test", 2, metric="pm2_5"),
        "out-of-range": _good("gw-test", 3, metric="relativeHumidity", unit="1", value=81.0),
        "other-gateway": _good("gw-other", 4),
    }
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-probe", protocol=mqtt.MQTTv5)
    client.username_pw_set("gw-test", mosquitto.users["gw-test"])
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        for payload in bad.values():
            client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
        client.publish(topic, valid, qos=1).wait_for_publish(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()

    def dead_letters() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = cloud.get("/api/v1/dead-letters?limit=100", auth=True)
        return rows if len(rows) >= len(bad) else None

    rows = wait_until(dead_letters, deadline_s=15, what=f"{len(bad)} dead letters")
    reasons = "\n".join(f"{r.get('field')}: {r['reason']}" for r in rows)
    for expected in ("invalid JSON", "Expected `float`, got `str`", "unsupported schema version 9",
                     "exceeds the", "unknown metric 'pm2_5'", "outside the physical range", "gw-other"):  # fmt: skip
        assert expected in reasons, f"no dead letter mentions {expected!r}:\n{reasons}"
    assert all(r["topic"] == topic for r in rows)

    # The valid probe message was stored, and the agent's data keeps flowing after the bad input.
    wait_until(lambda: _latest_by_device(cloud).get("probe-1"), deadline_s=10, what="the valid probe reading")
    first = _latest_by_device(cloud)["aq-center-1"]["pm25"]["ts"]
    wait_until(
        lambda: _latest_by_device(cloud)["aq-center-1"]["pm25"]["ts"] > first,
        deadline_s=10,
        what="newer agent readings after the malformed ones",
    )
    assert cloud.process.alive()
    health = cloud.get("/health")
    assert health["status"] == "ok"
