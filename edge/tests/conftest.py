"""Fixtures for the edge tests: the real simulator (misto-sim) as a subprocess, an MQTT subscriber
on the real Mosquitto from the shared fixtures, and config files for the agent."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import LOOPBACK, free_port, port_open
from tests.fixtures.processes import ManagedProcess

SIM_SEED = 20250101


@dataclass
class Simulator:
    """A running ``misto-sim serve --freeze``: devices by model, and the values it says it serves."""

    process: ManagedProcess
    state_file: Path
    ports: dict[str, int]

    def values(self, model: str) -> dict[str, float]:
        state = json.loads(self.state_file.read_text(encoding="utf-8"))
        (device,) = [d for d in state["devices"] if d["port"] == self.ports[model]]
        assert device["model"] == model
        return {str(k): float(v) for k, v in device["values"].items()}

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    """``start_sim("aq1", "nm1", ports={"aq1": 5020})`` serves frozen devices on free (or given) ports."""
    started: list[Simulator] = []

    def start(*models: str, ports: dict[str, int] | None = None) -> Simulator:
        chosen = {model: (ports or {}).get(model) or free_port() for model in models}
        state = tmp_path / f"sim-state-{len(started)}.json"
        state.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "misto.sim.cli", "serve", "--freeze", "--seed", str(SIM_SEED)]
        for model, port in chosen.items():
            argv += ["--device", f"{model}@{LOOPBACK}:{port}"]
        argv += ["--state-file", str(state)]
        process = ManagedProcess.start(
            argv,
            name=f"misto-sim-{len(started)}",
            log_dir=tmp_path,
            ready=lambda: state.exists() and all(port_open(LOOPBACK, p) for p in chosen.values()),
            ready_timeout=20.0,
        )
        sim = Simulator(process, state, chosen)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Subscriber:
    """A paho client (as the cloud would run one) collecting what arrives on some topics."""

    client: paho.Client
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, topic: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, what: str, condition: Callable[[], Any], deadline_s: float = 15.0) -> Any:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if result := condition():
                return result
            time.sleep(0.02)
        raise TimeoutError(f"timed out after {deadline_s}s waiting for {what}; got {len(self.messages)} message(s)")


@pytest.fixture
def subscribe(mosquitto: BrokerInfo) -> Iterator[Callable[[str], Subscriber]]:
    """``subscribe("misto/#")``: an admin subscriber (QoS 1) that is connected and subscribed on return.
    ``persistent=True`` keeps its session (and the messages queued for it) across a broker restart."""
    clients: list[paho.Client] = []

    def make(topic_filter: str, *, persistent: bool = False) -> Subscriber:
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{len(clients)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set("admin", mosquitto.users["admin"])
        subscriber = Subscriber(client)
        subscribed = threading.Event()

        def on_message(c: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
            with subscriber.lock:
                subscriber.messages.append(Received(msg.topic, msg.payload, bool(msg.retain)))

        client.on_message = on_message
        client.on_subscribe = lambda *args: subscribed.set()
        client.on_connect = lambda c, *args: c.subscribe(topic_filter, qos=1)
        properties = None
        if persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 300
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.connect(mosquitto.host, mosquitto.port, clean_start=not persistent, properties=properties)
        client.loop_start()
        clients.append(client)
        if not subscribed.wait(10):
            raise TimeoutError(f"subscriber did not subscribe to {topic_filter} within 10s")
        return subscriber

    yield make
    for client in clients:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write an agent config (a dict) to a YAML file; returns its path."""

    def write(config: dict[str, Any], name: str = "gateway.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    return write
