"""Back-pressure: while the store cannot write, the ingester holds at most ``queue_size`` messages,
its memory does not grow with the load, the broker keeps the rest (it drops none: the shipped
configuration has ``max_queued_messages 0``), and once the store is back every published message
is stored exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from cloud.tests.ingest_load import LinePublisher, telemetry_lines
from cloud.tests.support import eventually, start_ingester, subscriber_config
from misto.cloud.settings import MqttVersion
from misto.cloud.storage.sqlite import SqliteStore
from tests.fixtures.mosquitto import BrokerInfo

GATEWAYS = ("gw-a", "gw-b", "gw-c", "gw-d")
MESSAGES = 600  # per gateway
READINGS = 100  # per message: about 10 kB each, 24 MB in all
QUEUE_SIZE = 50
RSS_GROWTH_LIMIT = 16 * 1024 * 1024  # far below the 24 MB published; an unbounded queue holds them all


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [MqttVersion.V5, MqttVersion.V311])
async def test_a_stalled_store_holds_the_load_at_the_broker_and_loses_nothing(
    tmp_path: Path, mosquitto: BrokerInfo, protocol: MqttVersion
) -> None:
    path = tmp_path / "misto.db"
    config = subscriber_config(
        mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"], protocol=protocol
    )
    start = datetime.now(UTC) - timedelta(minutes=10)
    publishers = [LinePublisher(mosquitto, gw, mosquitto.add_gateway(gw), tmp_path) for gw in GATEWAYS]
    for publisher in publishers:
        publisher.write(telemetry_lines(publisher.gateway, MESSAGES, READINGS, start=start))
    process = psutil.Process()
    async with await SqliteStore.open(path, busy_timeout=timedelta(milliseconds=20)) as store:
        running = await start_ingester(store, config, queue_size=QUEUE_SIZE)
        lock = sqlite3.connect(path, isolation_level=None)  # another process holding the write lock
        try:
            lock.execute("BEGIN EXCLUSIVE")
            rss_before = process.memory_info().rss
            for publisher in publishers:
                publisher.start()
            deepest = taken = 0
            while not all(p.done() for p in publishers):
                deepest = max(deepest, running.stats.queue_depth())
                taken = max(taken, running.stats.messages_received)
                await asyncio.sleep(0.01)
            for publisher in publishers:
                await publisher.wait(deadline_s=60)
            rss_growth = process.memory_info().rss - rss_before
            stats = running.stats
            # Everything is published and acknowledged by the broker; the ingester holds a bounded part.
            assert stats.acked == 0

            async def write_refused() -> bool:  # the publishers can finish before the first write is tried
                return stats.store_retries > 0

            await eventually(write_refused, what="a write refused by the locked store", deadline_s=30)
            assert stats.acked == 0
            assert deepest <= QUEUE_SIZE
            if protocol is MqttVersion.V5:  # Receive Maximum: the broker sent no more than the queue holds
                assert stats.receive_maximum == QUEUE_SIZE
                assert taken <= QUEUE_SIZE
            else:  # 3.1.1: the network thread waits for room; Mosquitto sends max_inflight_messages (100)
                assert taken <= QUEUE_SIZE + 100
            assert rss_growth < RSS_GROWTH_LIMIT, f"RSS grew by {rss_growth / 1e6:.1f} MB"
            lock.execute("ROLLBACK")

            total = len(GATEWAYS) * MESSAGES

            async def all_stored() -> bool:
                return stats.acked == total

            await eventually(all_stored, what=f"{total} messages stored after the store came back", deadline_s=90)
            counts = await store.counts()
            assert (counts.messages, counts.readings) == (total, total * READINGS)
            assert (stats.telemetry_stored, stats.duplicates, stats.dead_letters_total) == (total, 0, 0)
            assert stats.readings_stored == total * READINGS
            assert stats.batches < total  # written in batches, not one message at a time
        finally:
            lock.close()
            for publisher in publishers:
                publisher.stop()
            await running.stop()
