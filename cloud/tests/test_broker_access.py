"""Broker access control generated from the registry, against a REAL Mosquitto started from the
generated password and ACL files: a gateway publishes only on its own topics and reads only its own
commands, bad or missing credentials are refused, and a revoked gateway is cut off by regenerating
the files and SIGHUP while other clients stay connected. Mosquitto 2.0.11's limits are pinned too."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from misto.cloud.registry.credentials import AccountRole, BrokerCredentials
from misto.cloud.registry.models import GatewayCreate
from misto.cloud.registry.mosquitto_files import BrokerFilesError, write_mosquitto_files
from misto.cloud.registry.sql import SqlRegistry
from misto.protocol.topics import Channel, build
from tests.fixtures.mosquitto import find_binary
from tests.fixtures.net import LOOPBACK, free_port, wait_until
from tests.fixtures.processes import ManagedProcess

DEADLINE_S = 10.0
OPERATOR = "operator:test"
NOT_AUTHORIZED = 135  # MQTT v5 reason code; Mosquitto 2.0.11 also answers a bad password with it


async def add_gateway(registry: SqlRegistry, gateway_id: str) -> None:
    await registry.create_gateway(GatewayCreate(id=gateway_id, name=gateway_id, organisation="City"), actor=OPERATOR)


class Client:
    """A paho MQTT v5 client that records CONNACK, SUBACK, PUBACK reason codes, messages and its
    disconnection."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{username}-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.suback: list[ReasonCode] | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.disconnected: ReasonCode | None = None
        self._messages: list[paho.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.connect(LOOPBACK, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, userdata: object, flags: object, rc: ReasonCode, props: object) -> None:
        self.connack = rc

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int, rcs: list[ReasonCode], p: object) -> None:
        self.suback = rcs

    def _on_publish(self, client: paho.Client, userdata: object, mid: int, rc: ReasonCode, props: object) -> None:
        with self._lock:
            self.pubacks[mid] = rc

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object, rc: ReasonCode, p: object) -> None:
        self.disconnected = rc

    def connected(self) -> ReasonCode:
        return wait_until(lambda: self.connack, deadline_s=DEADLINE_S, what="CONNACK")

    def accepted(self) -> bool:
        return not self.connected().is_failure

    def subscribe(self, topic: str) -> ReasonCode:
        assert self.accepted(), f"connection refused: {self.connack}"
        self.suback = None
        self.client.subscribe(topic, qos=1)
        return wait_until(lambda: self.suback, deadline_s=DEADLINE_S, what=f"SUBACK for {topic}")[0]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """QoS 1; returns the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        return wait_until(lambda: self.pubacks.get(info.mid), deadline_s=DEADLINE_S, what=f"PUBACK for {topic}")

    def messages(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return [(m.topic, bytes(m.payload)) for m in self._messages]

    def wait_for(self, topic: str, payload: bytes) -> list[tuple[str, bytes]]:
        """Wait until ``payload`` arrives on ``topic``; returns everything received so far."""
        wait_until(lambda: (topic, payload) in self.messages(), deadline_s=DEADLINE_S, what=f"{payload!r} on {topic}")
        return self.messages()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Broker:
    registry: SqlRegistry
    creds: BrokerCredentials
    workdir: Path
    port: int
    secrets: dict[str, str]
    process: ManagedProcess | None = None
    clients: list[Client] = field(default_factory=list)

    @property
    def passwd(self) -> Path:
        return self.workdir / "passwd"

    @property
    def acl(self) -> Path:
        return self.workdir / "acl"

    def start(self, *extra: str) -> None:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {LOOPBACK}",
            "allow_anonymous false",
            f"password_file {self.passwd}",
            f"acl_file {self.acl}",
            "persistence false",
            "log_type all",
            f"log_dest file {self.workdir / 'broker.log'}",
            *extra,
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise Mosquitto drops to 'mosquitto', who cannot read the temp dir
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.process = ManagedProcess.start(
            [find_binary("mosquitto"), "-c", str(conf)], name="mosquitto", log_dir=self.workdir, ready_port=self.port
        )

    def log(self) -> str:
        return (self.workdir / "broker.log").read_text(encoding="utf-8", errors="replace")

    async def regenerate(self) -> None:
        assert self.process is not None
        await write_mosquitto_files(self.registry, self.passwd, self.acl, reload_pid=self.process.pid)

    def connect(self, username: str | None, password: str | None = None) -> Client:
        client = Client(self.port, username, password if password is not None else self.secrets.get(username or ""))
        self.clients.append(client)
        return client


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    async with await SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        creds = BrokerCredentials(registry)
        found: dict[str, str] = {}
        for gw in ("gw-a", "gw-b"):
            await add_gateway(registry, gw)
            found[gw] = (await creds.issue_gateway(gw, actor=OPERATOR)).secret
        found["ingester"] = (await creds.issue_service("ingester", AccountRole.INGESTER, actor=OPERATOR)).secret
        found["admin"] = (await creds.issue_service("admin", AccountRole.ADMIN, actor=OPERATOR)).secret
        workdir = tmp_path / "broker"
        workdir.mkdir(mode=0o700)
        written = await write_mosquitto_files(registry, workdir / "passwd", workdir / "acl")
        assert written.usernames == ("admin", "gw-a", "gw-b", "ingester")
        assert written.gateways == ("gw-a", "gw-b")
        for path in (written.passwd_path, written.acl_path):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert found["gw-a"] not in written.passwd_path.read_text(encoding="utf-8")
        running = Broker(registry, creds, workdir, free_port(), found)
        running.start()
        try:
            yield running
        finally:
            for client in running.clients:
                client.close()
            assert running.process is not None
            running.process.stop()


def topic(gw: str, channel: Channel) -> str:
    return build(gw, channel)


async def test_gateway_publishes_only_its_own_topics(broker: Broker) -> None:
    ingester = broker.connect("ingester")
    assert ingester.subscribe("misto/v1/+/telemetry").value == 1
    assert ingester.subscribe("$share/ingest/misto/v1/+/status").value == 1  # as the ingester subscribes
    admin = broker.connect("admin")
    assert admin.subscribe("misto/#").value == 1
    a = broker.connect("gw-a")
    assert a.accepted()
    assert a.publish(topic("gw-a", Channel.TELEMETRY), b"a-1").value == 0
    ingester.wait_for(topic("gw-a", Channel.TELEMETRY), b"a-1")
    admin.wait_for(topic("gw-a", Channel.TELEMETRY), b"a-1")

    # Forged: on B's telemetry. MQTT v5 PUBACK says "not authorized"; the broker drops it. A's next
    # message on its own topic arrives, and messages of one connection keep their order, so the
    # forged one would have arrived before it.
    assert a.publish(topic("gw-b", Channel.TELEMETRY), b"forged").value == NOT_AUTHORIZED
    assert a.publish(topic("gw-a", Channel.CMD), b"a-writes-cmd").value == NOT_AUTHORIZED
    assert a.publish("misto/v1/gw-a/other", b"other").value == NOT_AUTHORIZED
    assert a.publish(topic("gw-a", Channel.STATUS), b"a-2").value == 0
    got = ingester.wait_for(topic("gw-a", Channel.STATUS), b"a-2")
    assert [p for _, p in got] == [b"a-1", b"a-2"]


async def test_gateway_reads_only_its_own_commands(broker: Broker) -> None:
    a = broker.connect("gw-a")
    b = broker.connect("gw-b")
    a.subscribe(topic("gw-a", Channel.CMD))
    b.subscribe(topic("gw-b", Channel.CMD))
    # Mosquitto 2.0.11 grants every subscription (even on B's topic) and applies the ACL's read
    # rules to each message it would deliver: the protection is that nothing of B's arrives.
    assert a.subscribe("misto/v1/+/cmd").value == 1
    assert a.subscribe(topic("gw-b", Channel.CMD)).value == 1
    ingester = broker.connect("ingester")
    assert ingester.publish(topic("gw-b", Channel.CMD), b"for-b").value == 0
    assert ingester.publish(topic("gw-a", Channel.CMD), b"for-a").value == 0
    b.wait_for(topic("gw-b", Channel.CMD), b"for-b")
    got = a.wait_for(topic("gw-a", Channel.CMD), b"for-a")  # published after for-b by the same client
    assert (topic("gw-b", Channel.CMD), b"for-b") not in got
    assert ingester.publish(topic("gw-a", Channel.TELEMETRY), b"ingester-forges").value == NOT_AUTHORIZED


async def test_bad_credentials_are_refused(broker: Broker) -> None:
    assert broker.connect("gw-a", "wrong-password").connected().value == NOT_AUTHORIZED
    assert broker.connect("gw-a", broker.secrets["gw-b"]).connected().value == NOT_AUTHORIZED
    assert broker.connect("gw-unknown", "whatever").connected().value == NOT_AUTHORIZED
    assert broker.connect(None).connected().value == NOT_AUTHORIZED  # anonymous
    assert broker.connect("gw-a", "").connected().value == NOT_AUTHORIZED
    assert broker.connect("gw-a").accepted()


async def test_revoked_gateway_is_cut_off_without_dropping_others(broker: Broker) -> None:
    ingester = broker.connect("ingester")
    ingester.subscribe("misto/v1/+/telemetry")
    a = broker.connect("gw-a")
    b = broker.connect("gw-b")
    assert a.accepted()
    assert b.accepted()
    assert a.publish(topic("gw-a", Channel.TELEMETRY), b"a-before").value == 0
    ingester.wait_for(topic("gw-a", Channel.TELEMETRY), b"a-before")

    await broker.creds.revoke("gw-a", actor=OPERATOR)
    await broker.regenerate()
    assert "gw-a" not in broker.passwd.read_text(encoding="utf-8")
    # The reload is asynchronous: wait until a new connection as A is refused.
    wait_until(
        lambda: broker.connect("gw-a").connected().value == NOT_AUTHORIZED,
        deadline_s=DEADLINE_S,
        what="the broker to refuse gw-a after the reload",
    )

    # B and the ingester kept their connections and keep working.
    assert b.disconnected is None
    assert ingester.disconnected is None
    assert b.publish(topic("gw-b", Channel.TELEMETRY), b"b-after").value == 0
    ingester.wait_for(topic("gw-b", Channel.TELEMETRY), b"b-after")

    # A's open connection: Mosquitto 2.0.11 disconnects, on reload, a client whose username is no
    # longer in the password file; if it ever did not, its ACL is gone, so nothing it publishes
    # would be delivered.
    wait_until(lambda: a.disconnected is not None, deadline_s=DEADLINE_S, what="gw-a's connection to be closed")
    assert b.publish(topic("gw-b", Channel.TELEMETRY), b"b-last").value == 0
    got = ingester.wait_for(topic("gw-b", Channel.TELEMETRY), b"b-last")
    assert [p for t, p in got if t == topic("gw-a", Channel.TELEMETRY)] == [b"a-before"]
    assert b.disconnected is None
    assert ingester.disconnected is None


async def test_missing_pid_is_reported(broker: Broker) -> None:
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    with pytest.raises(BrokerFilesError, match=f"pid {gone.pid}: no such process"):
        await write_mosquitto_files(broker.registry, broker.passwd, broker.acl, reload_pid=gone.pid)


async def test_rotation_closes_the_open_connection(broker: Broker) -> None:
    a = broker.connect("gw-a")
    b = broker.connect("gw-b")
    assert a.accepted()
    assert b.accepted()
    old = broker.secrets["gw-a"]
    new = (await broker.creds.rotate("gw-a", actor=OPERATOR)).secret
    await broker.regenerate()
    wait_until(
        lambda: broker.connect("gw-a", old).connected().value == NOT_AUTHORIZED,
        deadline_s=DEADLINE_S,
        what="the broker to refuse gw-a's old secret after the reload",
    )
    # Mosquitto 2.0.11 checks the open connections' passwords against the reloaded file: the
    # gateway is disconnected and must reconnect with its new secret.
    wait_until(lambda: a.disconnected is not None, deadline_s=DEADLINE_S, what="gw-a's connection to be closed")
    assert broker.connect("gw-a", new).accepted()
    assert not b.publish(topic("gw-b", Channel.TELEMETRY), b"b").is_failure  # "no matching subscribers"
    assert b.disconnected is None


def takeover(broker: Broker, victim: Client, thief_user: str) -> paho.Client:
    """Connect as ``thief_user`` with the victim's client id; returns the connected client."""
    client_id = victim.client._client_id.decode()
    thief = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    thief.username_pw_set(thief_user, broker.secrets[thief_user])
    thief.connect(LOOPBACK, broker.port)
    thief.loop_start()
    wait_until(thief.is_connected, deadline_s=DEADLINE_S, what=f"{thief_user} to connect as {client_id}")
    return thief


async def test_client_id_takeover_limit_and_its_fix(broker: Broker) -> None:
    """A LIMIT of Mosquitto 2.0.11: a gateway that connects with the ingester's client id
    disconnects the ingester (session takeover is not bound to the username); its reads stay
    under its own ACL. ``use_username_as_clientid true`` makes the client id the username, so
    a gateway can only take over its own sessions."""
    ingester = broker.connect("ingester")
    assert ingester.accepted()
    thief = takeover(broker, ingester, "gw-a")
    try:
        wait_until(lambda: ingester.disconnected is not None, deadline_s=DEADLINE_S, what="the ingester to be kicked")
    finally:
        thief.disconnect()
        thief.loop_stop()

    assert broker.process is not None
    broker.process.stop()
    broker.start("use_username_as_clientid true")
    ingester = broker.connect("ingester")
    assert ingester.accepted()
    thief = takeover(broker, ingester, "gw-a")
    try:
        assert not ingester.publish(topic("gw-a", Channel.CMD), b"still here").is_failure  # a round trip
        assert ingester.disconnected is None
    finally:
        thief.disconnect()
        thief.loop_stop()
