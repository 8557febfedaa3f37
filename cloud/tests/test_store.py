"""The Store contract, written against the protocol so every backend can run it (issue 4 adds
InfluxDB by parametrizing the ``any_store`` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.tests.support import T0, health
from misto.cloud.settings import SqliteStoreSettings
from misto.cloud.storage import DeadLetter, DeadLetterKind, Store, open_store
from misto.protocol import GatewayState, Reading


@pytest.fixture(params=["sqlite"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    match request.param:
        case "sqlite":
            store = await open_store(SqliteStoreSettings(path=tmp_path / "store.db"))
    try:
        yield store
    finally:
        await store.close()


def reading(metric: str = "pm25", value: float = 10.0, *, at: datetime = T0, device: str = "aq-1") -> Reading:
    unit = {"pm25": "ug/m3", "temperature": "Cel", "LAeq": "dB(A)"}[metric]
    return Reading(device, metric, value, unit, at)


def letter(
    gateway: str | None = "gw-1", *, payload: bytes = b"{", kind: DeadLetterKind = DeadLetterKind.DECODE
) -> DeadLetter:
    return DeadLetter(
        received_at=T0,
        topic=f"misto/v1/{gateway or 'x'}/telemetry",
        kind=kind,
        reason="invalid JSON",
        payload=payload,
        gateway=gateway,
        field="$",
    )


async def test_write_then_latest(any_store: Store) -> None:
    assert await any_store.write_batch("gw-1:b:1", "gw-1", [reading(value=10), reading("temperature", 20.5)])
    latest = await any_store.latest()
    assert [(r.device, r.metric, r.value, r.unit, r.ts, r.gateway) for r in latest] == [
        ("aq-1", "pm25", 10.0, "ug/m3", T0, "gw-1"),
        ("aq-1", "temperature", 20.5, "Cel", T0, "gw-1"),
    ]


async def test_latest_is_the_newest_reading_and_filters(any_store: Store) -> None:
    later = T0 + timedelta(seconds=30)
    await any_store.write_batch("gw-1:b:1", "gw-1", [reading(value=1), reading(device="nm-1", metric="LAeq", value=55)])
    await any_store.write_batch("gw-1:b:2", "gw-1", [reading(value=2, at=later)])
    await any_store.write_batch("gw-1:b:0", "gw-1", [reading(value=0, at=T0 - timedelta(hours=1))])  # late arrival
    assert [(r.metric, r.value, r.ts) for r in await any_store.latest(device="aq-1")] == [("pm25", 2.0, later)]
    assert [r.device for r in await any_store.latest(metric="LAeq")] == ["nm-1"]
    assert await any_store.latest(device="aq-1", metric="LAeq") == []
    assert await any_store.latest(device="nope") == []


async def test_duplicate_message_id_writes_nothing(any_store: Store) -> None:
    assert await any_store.write_batch("gw-1:b:1", "gw-1", [reading(value=1)])
    again = [reading(value=99, at=T0 + timedelta(minutes=1))]
    assert not await any_store.write_batch("gw-1:b:1", "gw-1", again, dead_letters=[letter()])
    counts = await any_store.counts()
    assert (counts.readings, counts.messages, counts.dead_letters) == (1, 1, 0)
    assert [r.value for r in await any_store.latest()] == [1.0]


async def test_same_series_and_time_is_not_counted_twice(any_store: Store) -> None:
    # A gateway that restarts (new boot id) may resend readings it had already sent.
    assert await any_store.write_batch("gw-1:boot1:7", "gw-1", [reading(value=5)])
    assert await any_store.write_batch("gw-1:boot2:0", "gw-1", [reading(value=5)])
    series = await any_store.series("aq-1", "pm25", T0, T0 + timedelta(minutes=1), timedelta(minutes=1))
    assert series is not None
    assert [w.count for w in series.windows] == [1]
    assert (await any_store.counts()).readings == 1


async def test_empty_batch_still_records_the_message(any_store: Store) -> None:
    # Every reading of the message was dead-lettered: a redelivery must not dead-letter them again.
    assert await any_store.write_batch("gw-1:b:1", "gw-1", [], dead_letters=[letter(kind=DeadLetterKind.VOCABULARY)])
    assert not await any_store.write_batch("gw-1:b:1", "gw-1", [], dead_letters=[letter()])
    counts = await any_store.counts()
    assert (counts.readings, counts.messages, counts.dead_letters) == (0, 1, 1)


async def test_devices_group_latest_readings(any_store: Store) -> None:
    await any_store.write_batch("gw-1:b:1", "gw-1", [reading(value=1), reading("temperature", 2)])
    later = T0 + timedelta(minutes=5)
    await any_store.write_batch("gw-2:b:1", "gw-2", [reading(device="nm-1", metric="LAeq", value=60, at=later)])
    devices = {d.device: d for d in await any_store.devices()}
    assert set(devices) == {"aq-1", "nm-1"}
    assert devices["aq-1"].gateway == "gw-1"
    assert devices["aq-1"].last_seen == T0
    assert sorted(r.metric for r in devices["aq-1"].readings) == ["pm25", "temperature"]
    assert (devices["nm-1"].gateway, devices["nm-1"].last_seen) == ("gw-2", later)


async def test_series_windows_align_to_the_epoch(any_store: Store) -> None:
    # Readings at 12:00:00, :20, :40, 12:01:00 (exactly on a boundary), 12:01:59.999, 12:02:00.
    offsets_ms = [0, 20_000, 40_000, 60_000, 119_999, 120_000]
    values = [1.0, 2.0, 6.0, 10.0, 20.0, 99.0]
    rows = [reading(value=v, at=T0 + timedelta(milliseconds=ms)) for ms, v in zip(offsets_ms, values, strict=True)]
    await any_store.write_batch("gw-1:b:1", "gw-1", rows)
    # [12:00:10, 12:02:00): start is inclusive, end exclusive; windows start on whole minutes.
    series = await any_store.series(
        "aq-1", "pm25", T0 + timedelta(seconds=10), T0 + timedelta(minutes=2), timedelta(minutes=1)
    )
    assert series is not None
    assert (series.unit, series.gateway) == ("ug/m3", "gw-1")
    assert [(w.start, w.count, w.min, w.max, w.mean) for w in series.windows] == [
        (T0, 2, 2.0, 6.0, 4.0),
        (T0 + timedelta(minutes=1), 2, 10.0, 20.0, 15.0),
    ]


async def test_series_skips_empty_windows_and_handles_odd_window_lengths(any_store: Store) -> None:
    await any_store.write_batch(
        "gw-1:b:1", "gw-1", [reading(value=1), reading(value=3, at=T0 + timedelta(hours=2, seconds=1))]
    )
    every = timedelta(seconds=7 * 60 + 3)
    series = await any_store.series("aq-1", "pm25", T0 - timedelta(hours=1), T0 + timedelta(hours=3), every)
    assert series is not None
    assert [w.count for w in series.windows] == [1, 1]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for window in series.windows:
        assert (window.start - epoch) % every == timedelta(0)
        assert window.start <= T0 + timedelta(hours=2, seconds=1)


async def test_series_of_unknown_device_or_metric_is_none(any_store: Store) -> None:
    await any_store.write_batch("gw-1:b:1", "gw-1", [reading()])
    span = (T0, T0 + timedelta(hours=1), timedelta(minutes=5))
    assert await any_store.series("aq-2", "pm25", *span) is None
    assert await any_store.series("aq-1", "temperature", *span) is None
    empty = await any_store.series("aq-1", "pm25", T0 + timedelta(days=1), T0 + timedelta(days=2), timedelta(hours=1))
    assert empty is not None
    assert empty.windows == ()


async def test_dead_letters_newest_first_with_limit_and_gateway(any_store: Store) -> None:
    binary = bytes(range(256))
    await any_store.dead_letter(letter("gw-1", payload=b"first"))
    await any_store.dead_letter(letter(None, payload=binary, kind=DeadLetterKind.TOPIC))
    await any_store.write_batch("gw-2:b:1", "gw-2", [reading()], dead_letters=[letter("gw-2", payload=b"third")])
    newest = await any_store.dead_letters(10)
    assert [d.letter.payload for d in newest] == [b"third", binary, b"first"]
    assert newest[1].letter.kind is DeadLetterKind.TOPIC
    assert newest[1].letter.gateway is None
    assert [d.letter.payload for d in await any_store.dead_letters(2)] == [b"third", binary]
    only = await any_store.dead_letters(10, gateway="gw-1")
    assert [(d.letter.gateway, d.letter.reason, d.letter.field) for d in only] == [("gw-1", "invalid JSON", "$")]


async def test_gateway_status_keeps_the_newest(any_store: Store) -> None:
    received = T0 + timedelta(seconds=1)
    assert await any_store.set_gateway_status(
        "gw-1", GatewayState.ONLINE, boot="b2", at=T0, agent_version="0.2", received_at=received
    )
    # A late copy of an older status (e.g. a retained message delivered again) changes nothing.
    assert not await any_store.set_gateway_status(
        "gw-1", GatewayState.OFFLINE, boot="b1", at=T0 - timedelta(minutes=1), agent_version="0.1", received_at=received
    )
    [status] = await any_store.gateways()
    assert (status.gateway, status.state, status.boot, status.agent_version) == (
        "gw-1",
        GatewayState.ONLINE,
        "b2",
        "0.2",
    )
    assert (status.status_at, status.last_seen) == (T0, received)
    assert await any_store.set_gateway_status(
        "gw-1", GatewayState.OFFLINE, boot="b2", at=T0 + timedelta(minutes=1), agent_version="0.2", received_at=received
    )
    assert (await any_store.gateways())[0].state is GatewayState.OFFLINE


async def test_telemetry_makes_a_gateway_known(any_store: Store) -> None:
    await any_store.write_batch("gw-9:b:1", "gw-9", [reading()])
    [status] = await any_store.gateways()
    assert (status.gateway, status.state, status.status_at) == ("gw-9", None, None)
    assert status.last_seen > T0  # when the cloud received it, not the reading's time


async def test_gateway_health_keeps_the_newest_by_its_time(any_store: Store) -> None:
    assert await any_store.gateway_health("gw-1") is None
    received = T0 + timedelta(minutes=5)
    first = health("gw-1", at=T0 + timedelta(minutes=1), depth=3)
    assert await any_store.set_gateway_health(first, received_at=received)
    # An older message arriving late (or the same one again) changes nothing.
    assert not await any_store.set_gateway_health(health("gw-1", at=T0, depth=9), received_at=received)
    assert not await any_store.set_gateway_health(first, received_at=received + timedelta(seconds=1))
    stored = await any_store.gateway_health("gw-1")
    assert stored is not None
    assert (stored.gateway, stored.health, stored.received_at) == ("gw-1", first, received)
    newer = health("gw-1", at=T0 + timedelta(minutes=2), boot="boot2", depth=0)
    assert await any_store.set_gateway_health(newer, received_at=received + timedelta(minutes=1))
    [status] = await any_store.gateways()  # a health message makes the gateway known
    assert (status.gateway, status.state, status.last_seen) == ("gw-1", None, received + timedelta(minutes=1))
    assert status.health is not None
    assert status.health.health == newer
    assert status.health.health.buffer.oldest_age_s is None
    assert await any_store.gateway_health("gw-2") is None


async def test_status_and_health_of_a_gateway_do_not_overwrite_each_other(any_store: Store) -> None:
    await any_store.set_gateway_health(health("gw-1"), received_at=T0)
    await any_store.set_gateway_status(
        "gw-1", GatewayState.ONLINE, boot="boot1", at=T0, agent_version="0.1.0", received_at=T0
    )
    await any_store.write_batch("gw-1:boot1:1", "gw-1", [reading()])
    [status] = await any_store.gateways()
    assert status.state is GatewayState.ONLINE
    assert status.health is not None
    assert status.health.health == health("gw-1")
    assert status.last_seen > T0


async def test_counts(any_store: Store) -> None:
    await any_store.write_batch("gw-1:b:1", "gw-1", [reading(), reading("temperature", 1)], dead_letters=[letter()])
    await any_store.dead_letter(letter())
    counts = await any_store.counts()
    assert (counts.series, counts.readings, counts.messages, counts.dead_letters, counts.gateways) == (2, 2, 1, 2, 1)
