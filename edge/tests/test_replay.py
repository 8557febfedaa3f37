"""Replay after an outage: what waited is sent first, in order, with its original message ids, at the
configured rate; what is produced while connected is not held back by the pacing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from misto.edge.agent import Agent
from misto.edge.buffer import Outbound
from misto.edge.buffer.sqlite import SqliteBuffer
from misto.edge.settings import settings_from_data
from misto.edge.uplink.pacing import TokenBucket
from misto.protocol import Channel, Reading, Telemetry, codec, topics
from tests.fixtures.mosquitto import BrokerInfo

DEADLINE = 20.0


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0, 0, 0]  # the burst
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) == 0  # one token a tenth of a second
    assert bucket.take(10.0) == 0  # refills up to the burst only
    assert [bucket.take(10.0) for _ in range(3)][-1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(rate=0, burst=1)


async def until(what: str, condition: Callable[[], Any]) -> Any:
    try:
        async with asyncio.timeout(DEADLINE):
            while not (result := condition()):  # noqa: ASYNC110 - set by other threads
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
    return result


def old_message(gateway: str, seq: int, when: datetime) -> Outbound:
    reading = Reading(device="aq-1", metric="pm25", value=float(seq), unit="ug/m3", ts=when)
    return Outbound.telemetry(
        Telemetry(schema=1, gateway=gateway, boot="earlier-run", seq=seq, sent_at=when, readings=[reading])
    )


async def test_backlog_is_replayed_in_order_at_the_configured_rate(
    mosquitto: BrokerInfo, subscribe: Any, tmp_path: Path
) -> None:
    gateway, count, rate = "gw-replay", 60, 20.0
    password = mosquitto.add_gateway(gateway)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    earlier = SqliteBuffer(tmp_path / "buffer.db", max_messages=1000)  # what an earlier run left behind
    await earlier.open()
    for seq in range(count):
        await earlier.append(old_message(gateway, seq, long_ago + timedelta(seconds=seq)))
    await earlier.close()

    topic = topics.build(gateway, Channel.TELEMETRY)
    arrivals: list[tuple[float, Telemetry]] = []
    watcher = subscribe(topic)
    watcher.client.on_message = lambda c, u, msg: arrivals.append(
        (time.monotonic(), codec.decode_telemetry(msg.payload))
    )
    config = {
        "gateway_id": gateway,
        "state_dir": str(tmp_path),
        "broker": {"url": mosquitto.url, "username": gateway, "password": password, "max_inflight": 10},
        "buffer": {"replay_rate": rate},
        "devices": [],
    }
    agent = Agent(settings_from_data(config, env={}))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await until("the whole backlog", lambda: len(arrivals) >= count and agent.buffer.depth() == 0)
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE):
            await task
    received = [message for _, message in arrivals]
    assert [(m.boot, m.seq) for m in received] == [("earlier-run", seq) for seq in range(count)]  # original ids
    span = arrivals[-1][0] - arrivals[0][0]
    burst = min(rate, 10)
    assert span >= 0.75 * (count - burst) / rate, f"{count} messages in {span:.2f}s: faster than {rate}/s"
    stats = agent.buffer.stats()
    assert (stats.recovered, stats.added, stats.sent, stats.depth) == (count, 0, count, 0)
    assert agent.uplink.stats.replayed == count


async def test_live_messages_are_not_paced(
    mosquitto: BrokerInfo, start_sim: Any, subscribe: Any, tmp_path: Path
) -> None:
    """A replay rate of 1/s would make 20 live messages take 20 s: connected, they go out at once."""
    gateway = "gw-live"
    password = mosquitto.add_gateway(gateway)
    sim = start_sim("nm1")
    topic = topics.build(gateway, Channel.TELEMETRY)
    watcher = subscribe(topic)
    config = {
        "gateway_id": gateway,
        "state_dir": str(tmp_path),
        "broker": {"url": mosquitto.url, "username": gateway, "password": password},
        "buffer": {"replay_rate": 1},
        "poll_interval": 0.1,
        "devices": [{"id": "nm-1", "driver": "modbus_tcp", "host": "127.0.0.1", "port": sim.ports["nm1"],
                     "profile": "nm1"}],
    }  # fmt: skip
    agent = Agent(settings_from_data(config, env={}))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await agent.uplink.wait_connected()
        started = time.monotonic()
        await until("20 messages", lambda: len(watcher.on(topic)) >= 20)
        assert time.monotonic() - started < 10
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE):
            await task
    assert agent.uplink.stats.replayed <= 2  # at most the polls made before the first connect
