"""The agent end to end against a real Mosquitto (shared ``mosquitto`` fixture) and the real simulator:
telemetry arrives once and decodes, the status is retained, the last will fires, and nothing is lost
across a broker restart."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from misto.edge.agent import Agent
from misto.edge.settings import Settings, settings_from_data
from misto.protocol import Channel, GatewayState, Status, codec, topics
from tests.fixtures.mosquitto import BrokerInfo, new_broker
from tests.fixtures.net import LOOPBACK
from tests.fixtures.processes import ManagedProcess

DEADLINE = 15.0


async def until(what: str, condition: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    async with asyncio.timeout(deadline):
        while not (result := condition()):  # noqa: ASYNC110 - set by other threads and processes
            await asyncio.sleep(0.02)
    return result


def agent_config(
    broker: BrokerInfo, gateway: str, password: str, devices: list[dict[str, Any]], *, state_dir: Path, **extra: Any
) -> dict[str, Any]:
    return {
        "gateway_id": gateway,
        "state_dir": str(state_dir),
        "broker": {
            "url": broker.url,
            "username": extra.pop("username", gateway),
            "password": password,
            "keepalive": 5,
            "reconnect_delay_min": 0.1,
            "reconnect_delay_max": 0.5,
        },
        "poll_interval": 0.2,
        "devices": devices,
        **extra,
    }


def sim_devices(sim: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"{model}-1", "driver": "modbus_tcp", "host": "127.0.0.1", "port": port, "profile": model, "timeout": 1}
        for model, port in sim.ports.items()
    ]


def status_of(payload: bytes) -> Status:
    return codec.decode(payload, Status)


def telemetry_seqs(subscriber: Any, gateway: str) -> list[int]:
    topic = topics.build(gateway, Channel.TELEMETRY)
    return [codec.decode_telemetry(m.payload, topic=topic).seq for m in subscriber.on(topic)]


class Running:
    """An in-process agent running until the block ends."""

    def __init__(self, settings: Settings) -> None:
        self.agent = Agent(settings)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Agent:
        self.task = asyncio.create_task(self.agent.run(self.stop))
        return self.agent

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        async with asyncio.timeout(DEADLINE):
            await self.task


async def test_telemetry_arrives_once_and_status_is_retained(
    mosquitto: BrokerInfo, start_sim: Any, subscribe: Any, tmp_path: Path
) -> None:
    gateway = "gw-edge-1"
    password = mosquitto.add_gateway(gateway)
    sim = start_sim("aq1", "nm1")
    watcher = subscribe(f"misto/v1/{gateway}/#")
    settings = settings_from_data(
        agent_config(mosquitto, gateway, password, sim_devices(sim), state_dir=tmp_path), env={}
    )
    status_topic = topics.build(gateway, Channel.STATUS)
    telemetry_topic = topics.build(gateway, Channel.TELEMETRY)

    async with Running(settings) as agent:
        await until("5 telemetry messages", lambda: len(watcher.on(telemetry_topic)) >= 5)
        late = subscribe(status_topic)  # joins after the agent: gets the retained status
        retained = await until("retained status", lambda: late.on(status_topic))
        assert retained[0].retain
        online = status_of(retained[0].payload)
        assert (online.state, online.gateway, online.boot) == (GatewayState.ONLINE, gateway, agent.boot)

    produced = agent.coordinator.stats.messages
    await until("every message", lambda: len(watcher.on(telemetry_topic)) >= produced)
    await asyncio.sleep(0.3)  # a duplicate would arrive right behind the originals
    seqs = telemetry_seqs(watcher, gateway)
    assert sorted(seqs) == list(range(produced))  # every message, exactly once
    stats = agent.buffer.stats()
    assert (stats.added, stats.sent, stats.rejected, stats.dropped, stats.depth) == (produced, produced, 0, 0, 0)

    expected = {f"{m}-1": sim.values(m) for m in sim.ports}
    for received in watcher.on(telemetry_topic):
        message = codec.decode_telemetry(received.payload, topic=received.topic)
        assert (message.gateway, message.boot) == (gateway, agent.boot)
        assert {r.device for r in message.readings} == set(expected)
        for reading in message.readings:
            assert reading.value == pytest.approx(expected[reading.device][reading.metric], rel=1e-6)

    states = [status_of(m.payload).state for m in watcher.on(status_topic)]
    assert states == [GatewayState.ONLINE, GatewayState.OFFLINE]  # a clean stop says offline itself
    after = subscribe(status_topic)
    final = await until("retained offline", lambda: after.on(status_topic))
    assert status_of(final[0].payload).state is GatewayState.OFFLINE


async def test_nothing_is_lost_across_a_broker_restart(
    mosquitto: BrokerInfo, start_sim: Any, subscribe: Any, tmp_path: Path
) -> None:
    gateway = "gw-edge-2"
    password = mosquitto.add_gateway(gateway)
    sim = start_sim("nm1")
    watcher = subscribe(f"misto/v1/{gateway}/telemetry", persistent=True)
    settings = settings_from_data(
        agent_config(mosquitto, gateway, password, sim_devices(sim), state_dir=tmp_path), env={}
    )

    async with Running(settings) as agent:
        await until("first telemetry", lambda: len(telemetry_seqs(watcher, gateway)) >= 3)
        mosquitto.stop()
        await until("the link to drop", lambda: not agent.uplink.connected)
        produced_while_down = agent.coordinator.stats.messages
        await until("messages to pile up while the broker is down", lambda: agent.buffer.depth() >= 5)
        assert agent.coordinator.stats.messages > produced_while_down
        mosquitto.start()
        await until("the buffer to empty", lambda: agent.uplink.connected and agent.buffer.depth() == 0)

    produced = agent.coordinator.stats.messages
    await until("every message", lambda: set(telemetry_seqs(watcher, gateway)) >= set(range(produced)))
    counts = Counter(telemetry_seqs(watcher, gateway))
    assert set(counts) == set(range(produced))
    # Messages in flight when the broker went away may arrive twice (at least once; the ingester dedupes).
    assert sum(n - 1 for n in counts.values()) <= settings.broker.max_inflight
    assert agent.uplink.stats.connects == 2
    assert agent.buffer.stats().dropped == 0


@pytest.fixture
def refusing_broker(tmp_path: Path) -> Iterator[BrokerInfo]:
    """Mosquitto as the shared fixture runs it, except ``max_queued_messages 1000``: with 0 (no limit, as
    the shared fixture sets it) Mosquitto 2.0.11 drops a v5 client right after refusing one of its QoS 1
    publishes, so a refusal (PUBACK 0x87) can only be seen with a limit."""

    class Limited(BrokerInfo):
        def config_text(self) -> str:
            return super().config_text().replace("max_queued_messages 0", "max_queued_messages 1000")

    broker = new_broker(tmp_path / "limited-mosquitto", Limited)
    try:
        yield broker
    finally:
        broker.stop()


async def test_refused_publish_is_rejected_and_counted(
    refusing_broker: BrokerInfo, start_sim: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """gw-test's account may only write misto/v1/gw-test/#: as 'gw-intruder' every publish is refused."""
    sim = start_sim("nm1")
    password = refusing_broker.users["gw-test"]
    config = agent_config(
        refusing_broker, "gw-intruder", password, sim_devices(sim), state_dir=tmp_path, username="gw-test"
    )
    async with Running(settings_from_data(config, env={})) as agent:
        await until("rejections", lambda: agent.buffer.stats().rejected >= 3)
    stats = agent.buffer.stats()
    assert stats.sent == 0
    assert stats.rejected + stats.depth == stats.added
    assert agent.uplink.stats.connects == 1  # refused messages are dead-lettered, not retried forever
    assert "refused buffer entry" in caplog.text
    assert "Not authorized" in caplog.text


async def test_a_broker_that_kicks_the_agent_is_not_hammered(
    mosquitto: BrokerInfo, start_sim: Any, tmp_path: Path
) -> None:
    """The shared broker drops a client whose publish it refuses (see ``refusing_broker``): the agent
    keeps its telemetry and backs off instead of reconnecting in a tight loop."""
    sim = start_sim("nm1")
    config = agent_config(
        mosquitto, "gw-intruder", mosquitto.users["gw-test"], sim_devices(sim), state_dir=tmp_path, username="gw-test"
    )
    async with Running(settings_from_data(config, env={})) as agent:
        await asyncio.sleep(2.0)  # the behaviour under test is a rate over time
    stats = agent.buffer.stats()
    assert stats.added > 0
    assert stats.sent == 0
    assert stats.dropped == 0
    assert 2 <= agent.uplink.stats.connects <= 12  # 0.1 s min delay: about 20 reconnects without backoff


async def test_wrong_password_keeps_retrying_and_stops_cleanly(mosquitto: BrokerInfo, tmp_path: Path) -> None:
    config = agent_config(mosquitto, "gw-test", "not-the-password", [], state_dir=tmp_path)
    settings = settings_from_data(config, env={})
    async with Running(settings) as agent:
        await until("three refused attempts", lambda: agent.uplink.stats.connect_failures >= 3)
        assert not agent.uplink.connected
    assert agent.uplink.stats.connects == 0


async def test_a_broker_that_never_answers_connect_times_out_and_retries(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A listener that accepts TCP and never sends CONNACK (an overloaded broker, or one that cannot
    parse this MQTT version) must not hang the agent: each attempt ends after connect_timeout."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    config = {
        "gateway_id": "gw-test",
        "state_dir": str(tmp_path),
        "broker": {"url": f"mqtt://{LOOPBACK}:{port}", "connect_timeout": "300ms",
                   "reconnect_delay_min": 0.05, "reconnect_delay_max": 0.1},
        "devices": [],
    }  # fmt: skip
    try:
        async with Running(settings_from_data(config, env={})) as agent:
            await until("two timed-out attempts", lambda: agent.uplink.stats.connect_failures >= 2)
            assert len(accepted) >= 2
            assert not agent.uplink.connected
        assert "no CONNACK within 0.3s" in caplog.text
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


def run_agent_process(config: Path, tmp_path: Path) -> ManagedProcess:
    return ManagedProcess.start(
        [sys.executable, "-m", "misto.edge.cli", "run", str(config)], name="misto-edge", log_dir=tmp_path
    )


@pytest.mark.parametrize("how", ["kill", "sigterm"])
async def test_offline_status_when_the_agent_dies_or_stops(
    how: str, *, mosquitto: BrokerInfo, start_sim: Any, subscribe: Any, write_config: Any, tmp_path: Path
) -> None:
    """SIGKILL: the broker publishes the last will. SIGTERM: the agent says offline itself and exits 0."""
    gateway = f"gw-edge-{how}"
    password = mosquitto.add_gateway(gateway)
    sim = start_sim("aq1")
    status_topic = topics.build(gateway, Channel.STATUS)
    watcher = subscribe(status_topic)
    config = write_config(agent_config(mosquitto, gateway, password, sim_devices(sim), state_dir=tmp_path))
    agent = run_agent_process(config, tmp_path)
    try:
        first = await until("online status", lambda: watcher.on(status_topic), deadline=20)
        online = status_of(first[0].payload)
        assert online.state is GatewayState.ONLINE
        if how == "kill":
            agent.kill9()
        else:
            assert agent.stop() == 0
        statuses = await until("offline status", lambda: watcher.on(status_topic)[1:])
    finally:
        agent.stop()
    offline = status_of(statuses[0].payload)
    assert (offline.state, offline.boot, offline.gateway) == (GatewayState.OFFLINE, online.boot, gateway)
    log = agent.log_text()
    assert f"gateway {gateway} starting" in log
    if how == "sigterm":
        assert f"gateway {gateway} stopped" in log
    assert "Traceback" not in log, log
