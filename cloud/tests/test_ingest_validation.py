"""Validation at the door: reading times outside the accepted window and readings for another
gateway's device are dead-lettered with a reason and a field path, counted per gateway and kind,
and visible through the API; the message's good readings are stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from cloud.tests.support import Gateway, eventually, subscriber_config, telemetry
from misto.cloud.api import create_app
from misto.cloud.ingest import Ingester, IngestStats
from misto.cloud.ingest.door import Door
from misto.cloud.ingest.inbound import InboundMessage
from misto.cloud.ingest.mqtt import MqttSubscriber
from misto.cloud.ingest.ownership import FirstGatewayOwnership
from misto.cloud.service import door as door_from_settings
from misto.cloud.settings import load_settings
from misto.cloud.storage import DeadLetterKind
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol import Channel, Reading, topics
from tests.fixtures.mosquitto import BrokerInfo

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "operator-token-for-door-tests-0123"


def message(topic: str = "misto/v1/gw-test/telemetry") -> InboundMessage:
    return InboundMessage(topic, b"", 1, 1, retain=False, duplicate=False, received_at=NOW)


def test_times_outside_the_window_are_refused_with_the_field_and_the_setting() -> None:
    door = Door(max_future=timedelta(minutes=5), max_age=timedelta(days=14))
    readings = [
        Reading("aq-1", "pm25", 10.0, "ug/m3", NOW - timedelta(days=3)),  # a replay after a 3-day outage
        Reading("aq-1", "pm25", 11.0, "ug/m3", NOW + timedelta(minutes=4)),  # a clock a little ahead
        Reading("aq-1", "pm25", 12.0, "ug/m3", NOW + timedelta(hours=2)),
        Reading("aq-1", "pm25", 13.0, "ug/m3", NOW - timedelta(days=15)),
        Reading("aq-1", "radiation", 1.0, "uSv/h", NOW),
    ]
    admitted = door.admit(message(), telemetry(readings=readings, at=NOW), NOW)
    assert [r.value for r in admitted.write.readings] == [10.0, 11.0]
    assert admitted.newest == NOW + timedelta(minutes=4)
    letters = {letter.field: letter for letter in admitted.write.dead_letters}
    assert set(letters) == {"$.readings[2].ts", "$.readings[3].ts", "$.readings[4].metric"}
    ahead, old = letters["$.readings[2].ts"], letters["$.readings[3].ts"]
    assert (ahead.kind, old.kind) == (DeadLetterKind.TIMESTAMP, DeadLetterKind.TIMESTAMP)
    assert ahead.reason == (
        "reading time 2026-03-01T14:00:00Z is 2.0h ahead of the cloud's clock "
        "(ingest.validation.max_future_s allows 5min): check the gateway's clock"
    )
    assert (
        old.reason
        == "reading time 2026-02-14T12:00:00Z is 15.0 days old (ingest.validation.max_age_days allows 14.0 days)"
    )
    assert json.loads(old.payload) == {
        "device": "aq-1", "metric": "pm25", "value": 13.0, "unit": "ug/m3", "ts": "2026-02-14T12:00:00Z"
    }  # fmt: skip
    assert (old.gateway, old.message_id) == ("gw-test", "gw-test:boot1:1")


def test_a_device_belongs_to_the_first_gateway_that_published_it() -> None:
    ownership = FirstGatewayOwnership({"aq-1": "gw-test"})
    door = Door(ownership=ownership)
    mine = door.admit(message(), telemetry(at=NOW), NOW)
    assert len(mine.write.readings) == 2
    other = telemetry("gw-other", readings=[Reading("aq-1", "pm25", 1.0, "ug/m3", NOW),
                                            Reading("nm-7", "LAeq", 50.0, "dB(A)", NOW)], at=NOW)  # fmt: skip
    refused = door.admit(message("misto/v1/gw-other/telemetry"), other, NOW)
    assert [r.device for r in refused.write.readings] == ["nm-7"]
    [letter] = refused.write.dead_letters
    assert (letter.kind, letter.field, letter.gateway) == (
        DeadLetterKind.DEVICE_OWNER,
        "$.readings[0].device",
        "gw-other",
    )
    assert letter.reason == "device 'aq-1' belongs to gateway 'gw-test', not 'gw-other'"
    assert ownership.owner("nm-7") == "gw-other"  # claimed by its first publisher


async def test_the_settings_build_the_door_with_owners_from_the_store(store: SqliteStore) -> None:
    await store.write_batch("gw-test:b:1", "gw-test", [Reading("aq-1", "pm25", 1.0, "ug/m3", NOW)])
    door = await door_from_settings(load_settings().ingest, store)
    assert (door.max_future, door.max_age) == (timedelta(seconds=300), timedelta(days=14))
    assert isinstance(door.ownership, FirstGatewayOwnership)
    assert door.ownership.owner("aq-1") == "gw-test"
    off = load_settings(overrides={"ingest": {"validation": {"device_ownership": "off"}}})
    assert (await door_from_settings(off.ingest, store)).ownership is None


async def test_refusals_are_dead_lettered_counted_per_gateway_and_shown_by_the_api(
    tmp_path: Path, mosquitto: BrokerInfo, gateway_factory: Callable[..., Gateway]
) -> None:
    now = datetime.now(UTC)
    gw_b = gateway_factory(mosquitto.host, mosquitto.port, "gw-b", mosquitto.add_gateway("gw-b"))
    gw = gateway_factory(mosquitto.host, mosquitto.port, "gw-test", mosquitto.users["gw-test"])
    async with await SqliteStore.open(tmp_path / "misto.db") as store:
        stats = IngestStats()
        config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
        link = MqttSubscriber(config, [topics.subscription(Channel.TELEMETRY)], queue_size=100, stats=stats)
        door = Door(max_future=timedelta(minutes=5), max_age=timedelta(days=14), ownership=FirstGatewayOwnership())
        ingester = Ingester(store, link, stats=stats, door=door)
        await link.start()
        task = None
        try:
            assert await link.wait_connected(10), link.last_error
            task = asyncio.create_task(ingester.run())
            gw.send(telemetry(seq=1, at=now))  # aq-1 is gw-test's from now on
            gw.send(telemetry(seq=2, at=now, readings=[
                Reading("aq-1", "pm25", 1.0, "ug/m3", now + timedelta(hours=1)),
                Reading("aq-1", "pm25", 2.0, "ug/m3", now - timedelta(days=30)),
                Reading("aq-1", "pm10", 3.0, "ug/m3", now),
            ]))  # fmt: skip
            gw_b.send(telemetry("gw-b", seq=1, at=now, readings=[Reading("aq-1", "pm25", 9.0, "ug/m3", now)]))

            async def all_acked() -> bool:
                return stats.acked == 3

            await eventually(all_acked, what="three messages acknowledged")
        finally:
            link.pause()
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await ingester.finish(5.0)
            await link.stop()
        assert stats.readings_stored == 3
        assert stats.rejected_by_gateway["gw-test"][DeadLetterKind.TIMESTAMP] == 2
        assert stats.rejected_by_gateway["gw-b"][DeadLetterKind.DEVICE_OWNER] == 1
        assert [r.value for r in await store.latest(device="aq-1", metric="pm25")] == [12.5]
        settings = load_settings(overrides={"api": {"operator_token": TOKEN}})
        app = create_app(settings, store=store, ingest=stats)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            assert (await client.get("/api/v1/ingest")).status_code == 401
            report = (await client.get("/api/v1/ingest", headers=auth)).json()
            letters = (await client.get("/api/v1/dead-letters", params={"gateway": "gw-b"}, headers=auth)).json()
        assert report["gateways"] == [
            {"gateway": "gw-test", "total": 2, "by_kind": {"timestamp": 2}},
            {"gateway": "gw-b", "total": 1, "by_kind": {"device_owner": 1}},
        ]
        assert (report["rejected"], report["rejected_by_kind"]) == (3, {"timestamp": 2, "device_owner": 1})
        assert (report["messages_received"], report["readings_received"], report["readings_written"]) == (3, 6, 3)
        assert report["receive_maximum"] == 100
        assert [(d["kind"], d["field"]) for d in letters] == [("device_owner", "$.readings[0].device")]
        assert "belongs to gateway 'gw-test', not 'gw-b'" in letters[0]["reason"]
