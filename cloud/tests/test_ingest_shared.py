"""Horizontal scale-out: two ingesters in one MQTT 5 share group on one Mosquitto split the
telemetry of several publishers between them, and every reading is stored exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.tests.ingest_load import LinePublisher, telemetry_lines
from cloud.tests.support import eventually, subscriber_config
from misto.cloud.ingest import Ingester, IngestStats
from misto.cloud.ingest.mqtt import MqttSubscriber
from misto.cloud.service import subscriptions
from misto.cloud.settings import load_settings
from misto.cloud.storage.sqlite import SqliteStore
from tests.fixtures.mosquitto import BrokerInfo

GATEWAYS = ("gw-a", "gw-b", "gw-c")
MESSAGES = 400  # per gateway
READINGS = 20


def test_every_ingested_channel_but_status_and_ack_is_shared() -> None:
    shared = subscriptions(load_settings(overrides={"broker": {"share_group": "ingesters"}}))
    assert shared == [
        "$share/ingesters/misto/v1/+/telemetry",
        "misto/v1/+/status",  # retained: a shared subscription gets no retained messages
        "$share/ingesters/misto/v1/+/health",
        "misto/v1/+/ack",
    ]
    assert subscriptions(load_settings())[0] == "misto/v1/+/telemetry"


@pytest.mark.slow
async def test_two_ingesters_share_the_load_and_store_each_reading_once(tmp_path: Path, mosquitto: BrokerInfo) -> None:
    topics = subscriptions(load_settings(overrides={"broker": {"share_group": "ingesters"}}))
    start = datetime.now(UTC) - timedelta(minutes=5)
    publishers = [LinePublisher(mosquitto, gw, mosquitto.add_gateway(gw), tmp_path) for gw in GATEWAYS]
    for publisher in publishers:
        publisher.write(telemetry_lines(publisher.gateway, MESSAGES, READINGS, start=start))
    async with await SqliteStore.open(tmp_path / "misto.db") as store:
        links = [
            MqttSubscriber(
                subscriber_config(
                    mosquitto.host,
                    mosquitto.port,
                    "ingester",
                    mosquitto.users["ingester"],
                    client_id=f"ingester-{n}-{uuid.uuid4().hex[:6]}",
                ),
                topics,
                queue_size=200,
                stats=IngestStats(),
            )
            for n in (1, 2)
        ]
        ingesters = [Ingester(store, link, stats=link.stats) for link in links]
        tasks = []
        try:
            for link in links:
                await link.start()
                assert await link.wait_connected(10), link.last_error
            tasks = [asyncio.create_task(ingester.run()) for ingester in ingesters]
            for publisher in publishers:
                publisher.start()
            for publisher in publishers:
                await publisher.wait(deadline_s=60)
            total = len(GATEWAYS) * MESSAGES

            async def all_acked() -> bool:
                return sum(i.stats.acked for i in ingesters) == total

            await eventually(all_acked, what=f"{total} messages acknowledged by the two ingesters", deadline_s=60)
        finally:
            for link in links:
                link.pause()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for ingester in ingesters:
                await ingester.finish(5.0)
            for link in links:
                await link.stop()
            for publisher in publishers:
                publisher.stop()
        shares = [i.stats.telemetry_stored for i in ingesters]
        assert sum(shares) == total
        assert min(shares) >= total // 5, f"the load was not shared: {shares}"
        assert sum(i.stats.duplicates for i in ingesters) == 0
        counts = await store.counts()
        assert (counts.messages, counts.readings) == (total, total * READINGS)
