"""The ingester against a real Mosquitto: what is stored, what is dead-lettered, what is redelivered."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cloud.tests.support import (
    T0,
    Gateway,
    RunningIngester,
    eventually,
    start_ingester,
    subscriber_config,
    telemetry,
)
from misto.cloud.ingest import InboundMessage
from misto.cloud.ingest.mqtt import MqttSubscriber
from misto.cloud.storage import DeadLetterKind, StoredDeadLetter
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol import MAX_PAYLOAD_BYTES, Channel, GatewayState, Reading, Status, codec, topics
from tests.fixtures.mosquitto import BrokerInfo

TELEMETRY = topics.build("gw-test", Channel.TELEMETRY)


async def stored_readings(store: SqliteStore) -> int:
    return (await store.counts()).readings


async def test_good_telemetry_is_stored(ingest: RunningIngester, gw: Gateway) -> None:
    gw.send(telemetry(seq=1))

    async def latest() -> list[tuple[str, str, float, str]]:
        return [(r.device, r.metric, r.value, r.gateway) for r in await ingest.store.latest()]

    assert await eventually(latest, what="readings stored") == [
        ("aq-1", "pm25", 12.5, "gw-test"),
        ("aq-1", "temperature", 21.25, "gw-test"),
    ]
    assert ingest.stats.telemetry_stored == 1
    assert ingest.stats.readings_stored == 2
    assert ingest.stats.connected


async def test_bad_input_is_dead_lettered_while_good_data_keeps_flowing(
    ingest: RunningIngester, gw: Gateway, mosquitto: BrokerInfo, gateway_factory: Callable[..., Gateway]
) -> None:
    good = telemetry(seq=1)
    body = json.loads(codec.encode(telemetry(seq=2)))
    wrong_type = {**body, "readings": [{**body["readings"][0], "value": "twelve"}]}
    schema_2 = {**body, "schema": 2}
    mixed = telemetry(
        seq=3,
        readings=[
            Reading("aq-1", "pm10", 30.0, "ug/m3", T0),
            Reading("aq-1", "radiation", 1.0, "uSv/h", T0),  # not in the vocabulary
            Reading("aq-1", "temperature", 21.0, "degC", T0),  # wrong unit
            Reading("aq-1", "relativeHumidity", 45.0, "1", T0),  # a percentage where 0..1 is expected
        ],
    )
    gw.send(good)
    gw.publish(TELEMETRY, b'{"schema": 1, "gateway": "gw-test", ')
    gw.publish(TELEMETRY, json.dumps(wrong_type).encode())
    gw.publish(TELEMETRY, json.dumps(schema_2).encode())
    gw.publish(TELEMETRY, b"[" + b" " * MAX_PAYLOAD_BYTES + b"]")
    gw.send(mixed)
    gw.send(telemetry("gw-other", seq=4), topic_gateway="gw-test")  # gw-test claims to be another gateway
    admin = gateway_factory(mosquitto.host, mosquitto.port, "admin", mosquitto.users["admin"])
    admin.send(telemetry("gw-test", seq=5), topic_gateway="gw-spoofed")  # on another gateway's topic
    gw.send(telemetry(seq=6, at=T0 + timedelta(minutes=1)))

    async def all_handled() -> bool:
        return ingest.stats.acked == 9

    await eventually(all_handled, what="nine messages acknowledged")
    letters = {(d.letter.kind, d.letter.field): d for d in await ingest.store.dead_letters(100)}
    assert set(letters) == {
        (DeadLetterKind.DECODE, "$"),
        (DeadLetterKind.DECODE, "$.readings[0].value"),
        (DeadLetterKind.SCHEMA, "$.schema"),
        (DeadLetterKind.OVERSIZE, None),
        (DeadLetterKind.VOCABULARY, "$.readings[1].metric"),
        (DeadLetterKind.VOCABULARY, "$.readings[2].unit"),
        (DeadLetterKind.VOCABULARY, "$.readings[3].value"),
        (DeadLetterKind.GATEWAY_MISMATCH, "$.gateway"),
    }
    assert len(await ingest.store.dead_letters(100)) == 9
    mismatches = [d for d in await ingest.store.dead_letters(100) if d.letter.kind is DeadLetterKind.GATEWAY_MISMATCH]
    assert sorted((d.letter.gateway, d.letter.reason) for d in mismatches) == [
        ("gw-spoofed", "payload gateway 'gw-test' differs from the topic's gateway 'gw-spoofed'"),
        ("gw-test", "payload gateway 'gw-other' differs from the topic's gateway 'gw-test'"),
    ]
    assert_reason(letters[(DeadLetterKind.SCHEMA, "$.schema")], "unsupported schema version 2")
    assert_reason(letters[(DeadLetterKind.OVERSIZE, None)], f"exceeds the {MAX_PAYLOAD_BYTES}-byte limit")
    assert_reason(letters[(DeadLetterKind.VOCABULARY, "$.readings[1].metric")], "unknown metric 'radiation'")
    assert_reason(letters[(DeadLetterKind.VOCABULARY, "$.readings[2].unit")], "has unit 'Cel', not 'degC'")
    assert_reason(letters[(DeadLetterKind.VOCABULARY, "$.readings[3].value")], "outside the physical range")
    unit_letter = letters[(DeadLetterKind.VOCABULARY, "$.readings[2].unit")].letter
    assert (unit_letter.message_id, json.loads(unit_letter.payload)["unit"]) == ("gw-test:boot1:3", "degC")
    assert letters[(DeadLetterKind.DECODE, "$")].letter.payload == b'{"schema": 1, "gateway": "gw-test", '
    assert len(letters[(DeadLetterKind.OVERSIZE, None)].letter.payload) == MAX_PAYLOAD_BYTES  # kept, cut to size
    # Good data before, between and after: seq 1 and 6 whole, and the good reading of seq 3.
    series = await ingest.store.series("aq-1", "pm25", T0, T0 + timedelta(hours=1), timedelta(hours=1))
    assert series is not None
    assert series.windows[0].count == 2
    assert [r.metric for r in await ingest.store.latest(metric="pm10")] == ["pm10"]
    stats = ingest.stats
    assert (stats.telemetry_stored, stats.readings_stored, stats.decode_errors) == (3, 5, 4)
    assert stats.dead_letters[DeadLetterKind.VOCABULARY] == 3
    assert stats.dead_letters[DeadLetterKind.GATEWAY_MISMATCH] == 2
    assert stats.dead_letters_total == 9


def assert_reason(stored: StoredDeadLetter, text: str) -> None:
    assert text in stored.letter.reason, stored.letter.reason


async def test_the_same_message_twice_is_stored_once(ingest: RunningIngester, gw: Gateway) -> None:
    message = telemetry(seq=42)
    gw.send(message)
    gw.send(message)

    async def both_acked() -> bool:
        return ingest.stats.acked == 2

    await eventually(both_acked, what="both copies acknowledged")
    assert ingest.stats.duplicates == 1
    assert (await ingest.store.counts()).readings == 2


@dataclass
class CrashBeforeAck:
    """Wraps the real subscriber and loses every acknowledgement, as a crash between the
    store's commit and the ack would."""

    subscriber: MqttSubscriber
    lost: list[InboundMessage] = field(default_factory=list)

    async def get(self) -> InboundMessage:
        return await self.subscriber.get()

    def get_nowait(self) -> InboundMessage | None:
        return self.subscriber.get_nowait()

    async def wait(self, timeout_s: float) -> bool:
        return await self.subscriber.wait(timeout_s)

    @property
    def capacity(self) -> int | None:
        return self.subscriber.capacity

    def ack(self, message: InboundMessage) -> None:
        self.lost.append(message)


async def test_unacknowledged_messages_are_redelivered_and_not_double_counted(
    store: SqliteStore, mosquitto: BrokerInfo, gw: Gateway
) -> None:
    config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
    wrappers: list[CrashBeforeAck] = []

    def crash(subscriber: MqttSubscriber) -> CrashBeforeAck:
        wrappers.append(CrashBeforeAck(subscriber))
        return wrappers[-1]

    first = await start_ingester(store, config, wrap=crash)
    try:
        gw.send(telemetry(seq=1))
        gw.send(telemetry(seq=2, at=T0 + timedelta(seconds=10)))

        async def stored_both() -> bool:
            return first.stats.telemetry_stored == 2

        await eventually(stored_both, what="first delivery stored")
    finally:
        await first.stop()
    assert len(wrappers[0].lost) == 2

    second = await start_ingester(store, config)  # same client id: the broker kept the session
    try:

        async def redelivered() -> bool:
            return second.stats.duplicates == 2

        await eventually(redelivered, what="both messages redelivered as duplicates")
        assert second.stats.telemetry_stored == 0
        assert (await store.counts()).readings == 4
    finally:
        await second.stop()

    third = await start_ingester(store, config)  # acknowledged now: nothing comes back
    try:
        gw.send(telemetry(seq=3, at=T0 + timedelta(seconds=20)))

        async def new_one() -> bool:
            return third.stats.telemetry_stored == 1

        await eventually(new_one, what="a new message after the redelivery")
        assert third.stats.duplicates == 0
        assert third.stats.messages_received == 1
    finally:
        await third.stop()


async def test_messages_published_while_the_ingester_is_down_arrive_later(
    store: SqliteStore, mosquitto: BrokerInfo, gw: Gateway
) -> None:
    config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
    first = await start_ingester(store, config)
    await first.stop()
    for seq in range(1, 21):
        gw.send(telemetry(seq=seq, at=T0 + timedelta(seconds=seq)))
    second = await start_ingester(store, config)
    try:

        async def all_stored() -> bool:
            return second.stats.telemetry_stored == 20

        await eventually(all_stored, what="20 queued messages stored")
        assert (await store.counts()).readings == 40
    finally:
        await second.stop()


async def test_reconnects_after_the_broker_restarts(ingest: RunningIngester, mosquitto: BrokerInfo) -> None:
    mosquitto.stop()

    async def disconnected() -> bool:
        return not ingest.stats.connected

    await eventually(disconnected, what="the ingester to notice the broker is gone")
    mosquitto.start()

    async def reconnected() -> bool:
        return ingest.stats.connected and ingest.stats.connects == 2

    await eventually(reconnected, what="the ingester to reconnect")
    assert ingest.stats.connection_failures >= 1
    gw = Gateway(mosquitto.host, mosquitto.port, "gw-test", mosquitto.users["gw-test"])
    try:
        gw.send(telemetry(seq=1))

        async def stored() -> bool:
            return ingest.stats.telemetry_stored == 1

        await eventually(stored, what="telemetry after the restart")
    finally:
        gw.close()


async def test_status_messages_update_the_gateway(ingest: RunningIngester, gw: Gateway) -> None:
    status_topic = topics.build("gw-test", Channel.STATUS)
    online = Status(schema=1, gateway="gw-test", state=GatewayState.ONLINE, boot="b7", at=T0, agent_version="0.1.0")
    gw.publish(status_topic, codec.encode(online), retain=True)

    async def known() -> list[tuple[str, GatewayState | None, str | None]]:
        return [(g.gateway, g.state, g.boot) for g in await ingest.store.gateways()]

    assert await eventually(known, what="gateway status") == [("gw-test", GatewayState.ONLINE, "b7")]
    offline = Status(schema=1, gateway="gw-test", state=GatewayState.OFFLINE, boot="b7", at=T0 + timedelta(minutes=1))
    gw.publish(status_topic, codec.encode(offline), retain=True)

    async def went_offline() -> bool:
        return (await ingest.store.gateways())[0].state is GatewayState.OFFLINE

    await eventually(went_offline, what="offline status")
    gw.publish(status_topic, b"", retain=True)  # clearing the retained status is not an error

    async def cleared() -> bool:
        return ingest.stats.ignored == 1

    await eventually(cleared, what="the retained status cleared")
    assert ingest.stats.dead_letters_total == 0


async def test_wrong_password_keeps_retrying_and_says_why(store: SqliteStore, mosquitto: BrokerInfo) -> None:
    config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", "not-the-password")
    subscriber = MqttSubscriber(config, [topics.subscription(Channel.TELEMETRY)])
    await subscriber.start()
    try:
        assert not await subscriber.wait_connected(0.5)

        async def failed_twice() -> bool:
            return subscriber.stats.connection_failures >= 2

        await eventually(failed_twice, what="repeated refusals")
        assert subscriber.last_error is not None
        assert "refused" in subscriber.last_error
        assert "authori" in subscriber.last_error.lower()
    finally:
        await subscriber.stop()


async def test_a_full_queue_holds_messages_back_and_loses_none(
    store: SqliteStore, mosquitto: BrokerInfo, gw: Gateway
) -> None:
    config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
    running = await start_ingester(store, config, queue_size=1)
    try:
        for seq in range(1, 51):
            gw.send(telemetry(seq=seq, at=T0 + timedelta(seconds=seq)))

        async def all_stored() -> bool:
            return running.stats.telemetry_stored == 50

        await eventually(all_stored, what="50 messages through a queue of one")
        assert (running.stats.acked, running.stats.duplicates, running.stats.dead_letters_total) == (50, 0, 0)
    finally:
        await running.stop()


async def test_a_locked_store_is_retried_and_the_message_stays_unacknowledged(
    tmp_path: Path, mosquitto: BrokerInfo, gw: Gateway
) -> None:
    path = tmp_path / "locked.db"
    config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
    async with await SqliteStore.open(path, busy_timeout=timedelta(milliseconds=20)) as store:
        running = await start_ingester(store, config)
        backup = sqlite3.connect(path, isolation_level=None)  # another process holding the write lock
        try:
            backup.execute("BEGIN EXCLUSIVE")
            gw.send(telemetry(seq=1))

            async def retrying() -> bool:
                return running.stats.store_retries >= 2

            await eventually(retrying, what="store retries while the database is locked")
            assert running.stats.acked == 0
            backup.execute("ROLLBACK")

            async def stored() -> bool:
                return running.stats.telemetry_stored == 1 and running.stats.acked == 1

            await eventually(stored, what="the message stored once the lock is gone")
        finally:
            backup.close()
            await running.stop()


async def test_stopping_acknowledges_what_was_received(store: SqliteStore, mosquitto: BrokerInfo, gw: Gateway) -> None:
    config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
    first = await start_ingester(store, config, queue_size=5)
    for seq in range(1, 31):
        gw.send(telemetry(seq=seq, at=T0 + timedelta(seconds=seq)))
    await first.stop()  # whatever was handed over is stored and acknowledged before DISCONNECT
    stored_first = first.stats.telemetry_stored
    assert first.stats.acked == first.stats.messages_received == stored_first
    second = await start_ingester(store, config)
    try:

        async def the_rest() -> bool:
            return second.stats.telemetry_stored == 30 - stored_first

        await eventually(the_rest, what="the messages not handed over before the stop")
        assert second.stats.duplicates == 0  # nothing the first ingester stored comes back
        assert (await store.counts()).messages == 30
    finally:
        await second.stop()
