"""Delivery under faults, with every part real: the simulator, misto-edge (polling 4 devices every
0.2 s, SQLite buffer), Mosquitto with persistence, the misto-cloud ingester and its SQLite store.

How the tests know "every reading the agent produced":

- The agent numbers its messages ``seq`` 0, 1, 2, ... per boot (process), so the messages of a boot
  are exactly ``range(N)``. For a boot stopped cleanly, ``N`` is the buffer's ``added`` count in its
  final state file; for a boot killed with -9 during a broker outage, its last messages are in its
  buffer file, which the test reads after the kill: ``N`` is one more than the highest seq there.
- A witness (a persistent MQTT session subscribed to the gateway's telemetry before the agent
  starts) records every message the broker accepted, with its readings, redeliveries included.
- The store must then hold, for each boot, exactly the message ids ``range(N)`` (the ingester's
  dedup table), and exactly the readings of those messages: the set of (device, metric, ts) from the
  witness equals the store's, whose primary key makes a reading stored twice impossible to hide.
  For a cleanly stopped boot, the count also equals the readings its own counters say it polled.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from misto.cloud.storage.base import to_ms
from misto.edge.buffer.sqlite import SqliteBuffer
from misto.edge.health.state_file import AgentState, StateFileError, read_state
from misto.protocol import Channel, Telemetry, codec, topics
from tests.fixtures.chain import Chain, Cloud
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
T = TypeVar("T")
GATEWAY = "gw-test"
DEVICES = {"aq-center-1": "aq1", "nm-port-1": "nm1", "aq-market-2": "aq1", "nm-bridge-2": "nm1"}
AGENT = {
    "state_interval": 0.2,
    "health_interval": "2s",
    "broker": {"keepalive": 5, "reconnect_delay_min": "200ms", "reconnect_delay_max": "1s"},
    "buffer": {"replay_rate": 200},
}
Triple = tuple[str, str, int]


@dataclass
class Witness:
    """Every telemetry message the broker accepted (a persistent session survives broker restarts)."""

    client: mqtt.Client
    messages: dict[str, Telemetry] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    """message id -> when the witness first received it (wall clock)."""
    deliveries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def triples(self) -> set[Triple]:
        with self.lock:
            return {(r.device, r.metric, to_ms(r.ts)) for m in self.messages.values() for r in m.readings}

    def seqs(self, boot: str) -> set[int]:
        with self.lock:
            return {m.seq for m in self.messages.values() if m.boot == boot}


@pytest.fixture
def witness(mosquitto: BrokerInfo) -> Iterator[Witness]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-witness", protocol=mqtt.MQTTv5)
    client.username_pw_set("admin", mosquitto.users["admin"])
    seen = Witness(client)
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        message = codec.decode_telemetry(bytes(msg.payload), topic=msg.topic)
        with seen.lock:
            seen.messages[message.message_id] = message
            seen.arrived.setdefault(message.message_id, time.time())
            seen.deliveries += 1

    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe(topics.build(GATEWAY, Channel.TELEMETRY), qos=1)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 600
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    client.connect(mosquitto.host, mosquitto.port, clean_start=False, properties=properties)
    client.loop_start()
    try:
        assert subscribed.wait(10), "the witness did not subscribe"
        yield seen
    finally:
        client.disconnect()
        client.loop_stop()


def state_file(chain: Chain) -> Path:
    return chain.workdir / f"{GATEWAY}-state" / "state.json"


def agent_state(
    chain: Chain, condition: Callable[[AgentState], bool], *, what: str, deadline_s: float = 30
) -> AgentState:
    def check() -> AgentState | None:
        try:
            state = read_state(state_file(chain))
        except StateFileError:
            return None
        return state if condition(state) else None

    return wait_until(check, deadline_s=deadline_s, what=what)


def stored(cloud: Cloud) -> tuple[set[str], set[Triple], int]:
    """Message ids, distinct (device, metric, ts) and the row count of readings in the cloud store."""
    db = sqlite3.connect(f"file:{cloud.db_path}?mode=ro", uri=True)
    try:
        ids = {row[0] for row in db.execute("SELECT message_id FROM processed_messages WHERE gateway = ?", (GATEWAY,))}
        rows = db.execute(
            "SELECT s.device, s.metric, r.ts FROM readings r JOIN series s ON s.id = r.series_id WHERE s.gateway = ?",
            (GATEWAY,),
        ).fetchall()
        letters = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    finally:
        db.close()
    assert letters == 0, f"{letters} dead letter(s)"
    return ids, {(d, m, ts) for d, m, ts in rows}, len(rows)


def expect_store(cloud: Cloud, witness: Witness, boots: dict[str, int]) -> set[Triple]:
    """Wait until the store and the witness hold the messages ``range(N)`` of every boot, then compare them."""
    wanted = {f"{GATEWAY}:{boot}:{seq}" for boot, count in boots.items() for seq in range(count)}
    ids: set[str] = set()

    def complete() -> bool:
        nonlocal ids
        ids = stored(cloud)[0]
        with witness.lock:
            seen = set(witness.messages)
        return ids >= wanted and seen >= wanted

    try:
        wait_until(complete, deadline_s=60, what=f"{len(wanted)} messages in the store and at the witness")
    except TimeoutError:
        missing = sorted(wanted - ids, key=lambda i: (i.rsplit(":", 1)[0], int(i.rsplit(":", 1)[1])))
        unseen = sorted(wanted - set(witness.messages))
        problem = f"never stored: {missing[:10]} ({len(missing)}); not at the broker: {unseen[:10]}"
        raise AssertionError(problem) from None
    ids, triples, rows = stored(cloud)
    assert ids == wanted, f"unexpected message ids in the store: {sorted(ids - wanted)[:10]}"
    for boot, count in boots.items():
        assert witness.seqs(boot) == set(range(count)), f"boot {boot}: the broker saw messages the agent never made"
    assert triples == witness.triples()
    assert rows == len(triples)
    return triples


def polled_readings(state: AgentState) -> int:
    return sum(device.readings for device in state.health.devices)


def start(chain: Chain) -> tuple[Cloud, Any]:
    sim = chain.simulator(DEVICES, freeze=False)
    cloud = chain.cloud()
    return cloud, sim


def run(chain: Chain, sim: Any) -> Any:
    return chain.agent(sim, poll_interval="0.2s", extra=AGENT)


@pytest.mark.parametrize("outage", ["stopped-under-load", "restarted"])
def test_broker_outage_under_load_loses_nothing(
    outage: str, chain: Chain, mosquitto: BrokerInfo, witness: Witness
) -> None:
    cloud, sim = start(chain)
    agent = run(chain, sim)
    before = agent_state(chain, lambda s: s.health.buffer.sent >= 10, what="telemetry flowing")
    mosquitto.stop()
    if outage == "stopped-under-load":
        # a backlog of at least 5 s of polling (25 messages of 4 devices) piles up on disk
        agent_state(chain, lambda s: not s.health.link.connected and s.health.buffer.depth >= 25, what="a backlog")
    mosquitto.start()
    sent_before = before.health.buffer.sent

    def delivered(s: AgentState) -> bool:
        health = s.health
        return health.link.connects >= 2 and health.buffer.depth == 0 and health.buffer.sent > sent_before + 10

    agent_state(chain, delivered, what="the backlog delivered after the broker came back", deadline_s=60)
    assert agent.stop() == 0
    final = read_state(state_file(chain))
    buffer = final.health.buffer
    assert final.stopped
    assert (buffer.recovered, buffer.dropped, buffer.rejected, buffer.depth) == (0, 0, 0, 0)
    assert buffer.sent == buffer.added
    triples = expect_store(cloud, witness, {final.health.boot: buffer.added})
    assert len(triples) == polled_readings(final)  # every reading polled, stored once
    assert "Traceback" not in agent.log_text()


def test_agent_killed_mid_outage_loses_nothing(chain: Chain, mosquitto: BrokerInfo, witness: Witness) -> None:
    cloud, sim = start(chain)
    first = run(chain, sim)
    agent_state(chain, lambda s: s.health.buffer.sent >= 10, what="telemetry flowing")
    mosquitto.stop()
    killed = agent_state(chain, lambda s: s.health.buffer.depth >= 20, what="a backlog on disk")
    first.kill9()  # mid-outage, mid-poll: as a power cut or the OOM killer would

    buffer_path = Path(killed.buffer_path or "")
    leftover = asyncio.run(read_buffer(buffer_path))
    boots = {m.boot for m in leftover}
    assert boots == {killed.health.boot}
    seqs = sorted(m.seq for m in leftover)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "the buffer has gaps"
    assert len(leftover) >= 20

    second = run(chain, sim)  # the broker is still down: the backlog waits on disk
    restarted = agent_state(
        chain, lambda s: s.health.boot != killed.health.boot and not s.health.link.connected, what="the new boot"
    )
    assert restarted.health.buffer.recovered == len(leftover)
    mosquitto.start()
    agent_state(
        chain,
        lambda s: s.health.boot == restarted.health.boot and s.health.link.connected and s.health.buffer.depth == 0,
        what="the recovered backlog delivered",
        deadline_s=60,
    )
    assert second.stop() == 0
    final = read_state(state_file(chain))
    buffer = final.health.buffer
    assert (buffer.recovered, buffer.dropped, buffer.rejected, buffer.depth) == (len(leftover), 0, 0, 0)
    assert buffer.sent == buffer.recovered + buffer.added

    triples = expect_store(cloud, witness, {killed.health.boot: seqs[-1] + 1, final.health.boot: buffer.added})
    left_behind = {(r.device, r.metric, to_ms(r.ts)) for m in leftover for r in m.readings}
    assert left_behind <= triples  # what the kill left on disk arrived
    second_boot = {t for m in witness.messages.values() if m.boot == final.health.boot for t in triples_of(m)}
    assert len(second_boot) == polled_readings(final)


def triples_of(message: Telemetry) -> set[Triple]:
    return {(r.device, r.metric, to_ms(r.ts)) for r in message.readings}


async def read_buffer(path: Path) -> list[Telemetry]:
    """What a killed agent left in its buffer (the kernel released its lock with the process)."""
    buffer = SqliteBuffer(path, max_messages=1_000_000)
    await buffer.open()
    try:
        return [codec.decode_telemetry(e.message.payload) for e in await buffer.peek(1_000_000)]
    finally:
        await buffer.close()


def test_readings_keep_their_read_time_through_the_outage(
    chain: Chain, mosquitto: BrokerInfo, witness: Witness
) -> None:
    """Readings that waited in the buffer arrive with the time they were read, not when they were sent."""
    cloud, sim = start(chain)
    agent = run(chain, sim)
    agent_state(chain, lambda s: s.health.buffer.sent >= 5, what="telemetry flowing")
    mosquitto.stop()
    agent_state(chain, lambda s: s.health.buffer.depth >= 15, what="a backlog")
    back = time.time()
    mosquitto.start()
    final = agent_state(chain, lambda s: s.health.link.connected and s.health.buffer.depth == 0, what="delivery")
    assert agent.stop() == 0
    # Wait until the store and the witness hold every message (the witness reconnects on its own schedule).
    expect_store(cloud, witness, {final.health.boot: read_state(state_file(chain)).health.buffer.added})
    waited = [m for m in witness.messages.values() if witness.arrived[m.message_id] > back]
    read_during_outage = [m for m in waited if all(r.ts.timestamp() < back for r in m.readings)]
    assert len(read_during_outage) >= 15, f"{len(waited)} arrived late, {len(read_during_outage)} read in the outage"
    # each poll of a device has its own read time(s): no two polls merged into one
    for device in DEVICES:
        per_poll = [{r.ts for r in m.readings if r.device == device} for m in witness.messages.values()]
        per_poll = [times for times in per_poll if times]
        assert len(set().union(*per_poll)) == sum(len(times) for times in per_poll), device
        assert len(per_poll) >= 20, device
