"""Provisioning end to end, with real parts: registry (gateways, devices) -> one-time token ->
``misto-edge provision`` -> the agent, started with the written config, connects with its own
credentials to a real Mosquitto whose password and ACL files the cloud service keeps from the
registry (anonymous off) -> its readings are stored and attributed to its gateway. A second
gateway's forgeries are refused: on the first gateway's topic by the broker ACL, and on its own
topic claiming the first gateway's device by the ingester (dead-lettered, naming both)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from misto.cloud.registry.credentials import AccountRole, BrokerCredentials
from misto.cloud.registry.mosquitto_files import write_mosquitto_files
from misto.cloud.registry.sql import SqlRegistry
from misto.protocol import Reading, Telemetry, codec, topics
from tests.fixtures.chain import BIN, Chain, Cloud, start_cloud
from tests.fixtures.mosquitto import BrokerInfo, find_binary
from tests.fixtures.net import LOOPBACK, free_port, wait_until
from tests.fixtures.processes import ManagedProcess

pytestmark = pytest.mark.e2e
NOT_AUTHORIZED = 135
TOKENS = "/api/v1/registry/gateways/{}/provisioning-tokens"


async def _seed_ingester(registry_path: Path, broker_dir: Path) -> str:
    """The ingester's account in the registry and the first broker files (before the broker starts)."""
    async with await SqlRegistry.open(f"sqlite:///{registry_path}") as registry:
        secret = (await BrokerCredentials(registry).issue_service("ingester", AccountRole.INGESTER, actor="e2e")).secret
        await write_mosquitto_files(registry, broker_dir / "passwd", broker_dir / "acl")
    return secret


def _start_broker(broker_dir: Path, port: int) -> ManagedProcess:
    lines = [
        f"listener {port} {LOOPBACK}",
        "allow_anonymous false",
        f"password_file {broker_dir / 'passwd'}",
        f"acl_file {broker_dir / 'acl'}",
        "persistence false",
        f"log_dest file {broker_dir / 'broker.log'}",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    (broker_dir / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    process = ManagedProcess.start(
        [find_binary("mosquitto"), "-c", str(broker_dir / "mosquitto.conf")],
        name="mosquitto-registry",
        log_dir=broker_dir,
        ready_port=port,
    )
    (broker_dir / "mosquitto.pid").write_text(f"{process.pid}\n", encoding="utf-8")
    return process


def _provision(cloud: Cloud, gateway: str, config_dir: Path) -> Path:
    status, answer = cloud.send("POST", TOKENS.format(gateway), {})
    assert status == 201, answer
    config_dir.mkdir()
    done = subprocess.run(
        [str(BIN / "misto-edge"), "provision", "--server", cloud.api, "--token", answer["token"],
         "--config-dir", str(config_dir), "--state-dir", str(config_dir / "state")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return config_dir / "gateway.yaml"


class Probe:
    """A paho MQTT v5 client that records PUBACK reason codes."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.pubacks: dict[int, int] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{username}-probe", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.on_publish = self._on_publish
        self.client.connect(LOOPBACK, port)
        self.client.loop_start()
        wait_until(self.client.is_connected, deadline_s=10, what=f"{username} to connect")

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: Any, props: object) -> None:
        self.pubacks[mid] = rc.value

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.pubacks, deadline_s=10, what=f"PUBACK on {topic}")
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_provisioned_gateway_is_ingested_and_forgeries_refused(chain: Chain, tmp_path: Path) -> None:
    broker_dir = tmp_path / "registry-broker"
    broker_dir.mkdir(mode=0o700)
    ingester_secret = asyncio.run(_seed_ingester(tmp_path / "misto-registry.db", broker_dir))
    port = free_port()
    broker_process = _start_broker(broker_dir, port)
    chain.processes.append(broker_process)
    broker = BrokerInfo(host=LOOPBACK, port=port, workdir=broker_dir, users={"ingester": ingester_secret})
    sim = chain.simulator({"aq-a-1": "aq1"}, freeze=False)

    cloud = start_cloud(
        tmp_path,
        broker,
        extra={
            "registry": {
                "broker_files": {
                    "passwd": str(broker_dir / "passwd"),
                    "acl": str(broker_dir / "acl"),
                    "reload_pid_file": str(broker_dir / "mosquitto.pid"),
                }
            },
            "ingest": {"validation": {"device_ownership": "registry", "unregistered_devices": "refuse"}},
        },
    )
    chain.processes.append(cloud.process)

    # The operator registers the gateways and their devices.
    for path, body in (
        ("device-models", {"id": "aq1", "kind": "air", "manufacturer": "Acme", "name": "AQ-1", "metrics": ["pm25"]}),
        ("gateways", {"id": "gw-a", "name": "A", "organisation": "City"}),
        ("gateways", {"id": "gw-b", "name": "B", "organisation": "City"}),
        ("devices", {"id": "aq-a-1", "gateway_id": "gw-a", "model_id": "aq1", "organisation": "City"}),
        ("devices", {"id": "aq-b-1", "gateway_id": "gw-b", "model_id": "aq1", "organisation": "City"}),
    ):
        status, answer = cloud.send("POST", f"/api/v1/registry/{path}", body)
        assert status == 201, answer

    # The technician provisions both gateways; the service puts them in the broker files.
    config_a = _provision(cloud, "gw-a", tmp_path / "gw-a")
    config_b = _provision(cloud, "gw-b", tmp_path / "gw-b")
    passwd = (broker_dir / "passwd").read_text(encoding="utf-8")
    assert "gw-a:$7$" in passwd
    assert "gw-b:$7$" in passwd
    secret_a = (config_a.parent / "mqtt.password").read_text(encoding="utf-8").strip()
    assert secret_a not in passwd

    # ... completes gw-a's config with its device's wiring, and starts the agent with it.
    data = yaml.safe_load(config_a.read_text(encoding="utf-8"))
    assert data["broker"]["username"] == "gw-a"
    data["poll_interval"] = "1s"
    data["devices"] = [
        {"id": "aq-a-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": sim.devices[0].port, "profile": "aq1"}
    ]
    config_a.write_text(yaml.safe_dump(data), encoding="utf-8")
    agent = ManagedProcess.start(
        [str(BIN / "misto-edge"), "run", str(config_a)], name="misto-edge-gw-a", log_dir=tmp_path
    )
    chain.processes.append(agent)

    def stored() -> dict[str, Any] | None:
        rows = [r for r in cloud.get("/api/v1/readings/latest", auth=True) if r["device"] == "aq-a-1"]
        return rows[0] if rows else None

    row = wait_until(stored, deadline_s=30, what="gw-a's readings in the store")
    assert row["gateway"] == "gw-a"

    # gw-b forges: on gw-a's topic (the broker refuses), and on its own topic for gw-a's device.
    secret_b = (config_b.parent / "mqtt.password").read_text(encoding="utf-8").strip()
    forger = Probe(port, "gw-b", secret_b)
    try:
        now = datetime.now(UTC)
        reading = Reading(device="aq-a-1", metric="pm25", value=999.0, unit="ug/m3", ts=now)
        as_a = Telemetry(schema=1, gateway="gw-a", boot="forged", seq=1, sent_at=now, readings=[reading])
        assert forger.publish(topics.build("gw-a", topics.Channel.TELEMETRY), codec.encode(as_a)) == NOT_AUTHORIZED
        as_b = Telemetry(schema=1, gateway="gw-b", boot="forged", seq=2, sent_at=now, readings=[reading])
        assert forger.publish(topics.build("gw-b", topics.Channel.TELEMETRY), codec.encode(as_b)) == 0
    finally:
        forger.close()

    def dead_letter() -> dict[str, Any] | None:
        rows = cloud.get("/api/v1/dead-letters?limit=100", auth=True)
        return next((r for r in rows if r.get("gateway") == "gw-b"), None)

    letter = wait_until(dead_letter, deadline_s=15, what="gw-b's forged reading dead-lettered")
    assert letter["reason"] == "device 'aq-a-1' belongs to gateway 'gw-a', not 'gw-b'"
    latest = cloud.get("/api/v1/readings/latest", auth=True)  # its devices are private (the default)
    assert all(r["value"] != 999.0 for r in latest if r["device"] == "aq-a-1")
    assert all(r["gateway"] == "gw-a" for r in latest if r["device"] == "aq-a-1")
    assert not [r for r in cloud.get("/api/v1/readings/latest") if r["device"] == "aq-a-1"], "private, yet public"
    assert agent.alive()
