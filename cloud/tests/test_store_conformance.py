"""One suite, every store: the :class:`Store` contract run against the embedded SQLite store and
against InfluxDB (a real ``influxd`` from the ``influxd`` fixture).

Data is written at recent times (``BASE``, two days ago at midnight UTC) because InfluxDB refuses
points older than its retention policy. Values are multiples of 1/4 so sums and means are exact
in floating point and can be compared with ``==``. Where a store computes rollups asynchronously
(InfluxDB's continuous queries), the suite asks it to catch up if it has ``flush_rollups()``
(:class:`~misto.cloud.storage.base.FlushRollups`) and then waits, with a deadline, for the data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cloud.tests.support import eventually, health
from misto.cloud.storage.base import (
    DeadLetter,
    DeadLetterKind,
    FlushRollups,
    IngestSnapshot,
    MessageWrite,
    Resolution,
    Series,
    Store,
    to_ms,
)
from misto.cloud.storage.measurements import INGEST_FIELDS
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol import GatewayState, Reading

BACKENDS = ["sqlite", "influx"]
NOW = datetime.now(UTC)
BASE = (NOW - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ROLLUP_DEADLINE_S = 60.0
UNITS = {"pm25": "ug/m3", "temperature": "Cel", "LAeq": "dB(A)"}


@pytest.fixture(params=BACKENDS)
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    store: Store
    match request.param:
        case "sqlite":
            store = await SqliteStore.open(tmp_path / "store.db")
        case "influx":  # imported here: the sqlite cases run without the InfluxDB backend's modules
            from misto.cloud.settings import InfluxStoreSettings
            from misto.cloud.storage.influx import InfluxStore

            influxd = request.getfixturevalue("influxd")
            store = await InfluxStore.open(InfluxStoreSettings(url=influxd.url, database="misto_test"))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def stored_ingest(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], list[dict[str, Any]]]:
    """Reads back what ``record_ingest`` kept, from the backend's own storage."""
    backend = request.node.callspec.params["any_store"]

    def from_sqlite() -> list[dict[str, Any]]:
        with sqlite3.connect(tmp_path / "store.db") as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(row) for row in conn.execute("SELECT * FROM ingest_stats ORDER BY instance, at")]
        conn.close()
        return rows

    def from_influx() -> list[dict[str, Any]]:
        influxd = request.getfixturevalue("influxd")
        [result] = influxd.query("SELECT * FROM misto_ingest GROUP BY instance", db="misto_test")
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                rows.append({"instance": series["tags"]["instance"], "at": row.pop("time"), **row})
        return sorted(rows, key=lambda r: (r["instance"], r["at"]))

    return from_sqlite if backend == "sqlite" else from_influx


def reading(
    metric: str = "pm25", value: float = 10.0, *, at: datetime = BASE, device: str = "aq-1", unit: str | None = None
) -> Reading:
    return Reading(device, metric, value, unit or UNITS[metric], at)


def letter(gateway: str | None = "gw-1", *, payload: bytes = b"{", at: datetime = NOW) -> DeadLetter:
    return DeadLetter(
        received_at=at,
        topic=f"misto/v1/{gateway or 'x'}/telemetry",
        kind=DeadLetterKind.DECODE,
        reason="invalid JSON",
        payload=payload,
        gateway=gateway,
        field="$",
    )


def summary(series: Series | None) -> list[tuple[datetime, int, float, float, float, float]]:
    assert series is not None
    return [(w.start, w.count, w.mean, w.min, w.max, w.last) for w in series.windows]


async def test_write_then_latest_per_series(any_store: Store) -> None:
    later = BASE + timedelta(seconds=30)
    assert await any_store.write_batch("gw-1:b:1", "gw-1", [reading(value=10), reading("temperature", 20.5)])
    await any_store.write_batch("gw-1:b:2", "gw-1", [reading(value=12.5, at=later), reading("LAeq", 55, device="nm-1")])
    await any_store.write_batch("gw-1:b:0", "gw-1", [reading(value=0, at=BASE - timedelta(hours=1))])  # late
    latest = await any_store.latest()
    assert [(r.device, r.metric, r.value, r.unit, r.ts, r.gateway) for r in latest] == [
        ("aq-1", "pm25", 12.5, "ug/m3", later, "gw-1"),
        ("aq-1", "temperature", 20.5, "Cel", BASE, "gw-1"),
        ("nm-1", "LAeq", 55.0, "dB(A)", BASE, "gw-1"),
    ]
    assert [(r.metric, r.value) for r in await any_store.latest(device="aq-1", metric="pm25")] == [("pm25", 12.5)]
    assert [r.device for r in await any_store.latest(metric="LAeq")] == ["nm-1"]
    assert await any_store.latest(device="aq-1", metric="LAeq") == []
    assert await any_store.latest(device="nope") == []


async def test_devices_group_their_latest_readings(any_store: Store) -> None:
    await any_store.write_batch("gw-1:b:1", "gw-1", [reading(value=1), reading("temperature", 2)])
    later = BASE + timedelta(minutes=5)
    await any_store.write_batch("gw-2:b:1", "gw-2", [reading("LAeq", 60, device="nm-1", at=later)])
    devices = {d.device: d for d in await any_store.devices()}
    assert set(devices) == {"aq-1", "nm-1"}
    assert (devices["aq-1"].gateway, devices["aq-1"].last_seen) == ("gw-1", BASE)
    assert sorted(r.metric for r in devices["aq-1"].readings) == ["pm25", "temperature"]
    assert (devices["nm-1"].gateway, devices["nm-1"].last_seen) == ("gw-2", later)


async def test_range_and_windowed_aggregates(any_store: Store) -> None:
    # 00:00:05 .. 00:02:30 in one message, another series alongside that must not mix in.
    values = {5: 1.0, 20: 2.5, 50: 5.5, 61: 10.0, 119: 20.25, 150: 4.0}
    rows = [reading(value=v, at=BASE + timedelta(seconds=s)) for s, v in values.items()]
    await any_store.write_batch(
        "gw-1:b:1", "gw-1", [*rows, reading("temperature", 99, at=BASE + timedelta(seconds=30))]
    )
    minute = timedelta(minutes=1)
    found = await any_store.series("aq-1", "pm25", BASE, BASE + timedelta(minutes=3), minute)
    assert found is not None
    assert (found.device, found.metric, found.unit, found.gateway) == ("aq-1", "pm25", "ug/m3", "gw-1")
    assert summary(found) == [
        (BASE, 3, 3.0, 1.0, 5.5, 5.5),
        (BASE + minute, 2, 15.125, 10.0, 20.25, 20.25),
        (BASE + 2 * minute, 1, 4.0, 4.0, 4.0, 4.0),
    ]
    # A range in the middle: only readings in [00:00:20, 00:02:00).
    middle = await any_store.series(
        "aq-1", "pm25", BASE + timedelta(seconds=20), BASE + 2 * minute, timedelta(minutes=2), resolution=Resolution.RAW
    )
    assert summary(middle) == [(BASE, 4, 9.5625, 2.5, 20.25, 20.25)]
    # Windows without readings are left out; an empty range is an empty series, an unknown one None.
    sparse = await any_store.series("aq-1", "pm25", BASE - timedelta(hours=1), BASE + timedelta(hours=1), minute)
    assert [w.start for w in summary_windows(sparse)] == [BASE, BASE + minute, BASE + 2 * minute]
    empty = await any_store.series("aq-1", "pm25", BASE + timedelta(hours=5), BASE + timedelta(hours=6), minute)
    assert empty is not None
    assert empty.windows == ()
    assert await any_store.series("aq-2", "pm25", BASE, BASE + minute, minute) is None
    assert await any_store.series("aq-1", "LAeq", BASE, BASE + minute, minute) is None


def summary_windows(series: Series | None) -> Sequence[Any]:
    assert series is not None
    return series.windows


async def test_window_edges_are_half_open_and_epoch_aligned(any_store: Store) -> None:
    # Readings at 00:00:00, :20, :40, 00:01:00 (exactly on a boundary), 00:01:59.999, 00:02:00.
    offsets_ms = [0, 20_000, 40_000, 60_000, 119_999, 120_000]
    values = [1.0, 2.0, 6.0, 10.0, 20.0, 99.0]
    rows = [reading(value=v, at=BASE + timedelta(milliseconds=ms)) for ms, v in zip(offsets_ms, values, strict=True)]
    await any_store.write_batch("gw-1:b:1", "gw-1", rows)
    minute = timedelta(minutes=1)
    # [00:00:10, 00:02:00): the start is inclusive, the end exclusive, windows start on whole minutes.
    found = await any_store.series("aq-1", "pm25", BASE + timedelta(seconds=10), BASE + 2 * minute, minute)
    assert summary(found) == [(BASE, 2, 4.0, 2.0, 6.0, 6.0), (BASE + minute, 2, 15.0, 10.0, 20.0, 20.0)]
    # A reading exactly at the start is in; one exactly at the end is out.
    exact = await any_store.series("aq-1", "pm25", BASE + minute, BASE + 2 * minute, minute)
    assert summary(exact) == [(BASE + minute, 2, 15.0, 10.0, 20.0, 20.0)]
    # Odd window lengths still align to the epoch, not to the start asked for.
    every = timedelta(seconds=7 * 60 + 3)
    odd = await any_store.series("aq-1", "pm25", BASE - timedelta(hours=1), BASE + timedelta(hours=1), every)
    assert sum(w.count for w in summary_windows(odd)) == 6
    assert summary_windows(odd)[0].start == EPOCH + (BASE - EPOCH) // every * every  # holds 00:00:00
    for window in summary_windows(odd):
        assert (window.start - EPOCH) % every == timedelta(0)


async def test_time_zones_come_back_as_the_same_utc_instants(any_store: Store) -> None:
    kyiv_summer = timezone(timedelta(hours=2))
    local = (BASE + timedelta(hours=3, minutes=15)).astimezone(kyiv_summer)
    assert local.utcoffset() == timedelta(hours=2)
    await any_store.write_batch("gw-1:b:1", "gw-1", [reading(value=3.5, at=local)])
    [latest] = await any_store.latest()
    assert latest.ts == BASE + timedelta(hours=3, minutes=15)
    assert latest.ts.utcoffset() == timedelta(0)
    # The range may be given in any offset too; windows come back in UTC.
    found = await any_store.series(
        "aq-1",
        "pm25",
        (BASE + timedelta(hours=3)).astimezone(kyiv_summer),
        (BASE + timedelta(hours=4)).astimezone(kyiv_summer),
        timedelta(minutes=30),
    )
    assert summary(found) == [(BASE + timedelta(hours=3), 1, 3.5, 3.5, 3.5, 3.5)]
    assert summary_windows(found)[0].start.utcoffset() == timedelta(0)


async def test_duplicates_never_count_twice(any_store: Store) -> None:
    assert await any_store.write_batch(
        "gw-1:boot1:7", "gw-1", [reading(value=5), reading(value=7, at=BASE + timedelta(seconds=10))]
    )
    # The same message again (a redelivery): a store that recognises it answers False.
    again = await any_store.write_batch(
        "gw-1:boot1:7", "gw-1", [reading(value=5), reading(value=7, at=BASE + timedelta(seconds=10))]
    )
    if isinstance(any_store, SqliteStore):
        assert again is False
    # The same reading in another message (a gateway restarted and resent it under a new boot id).
    assert await any_store.write_batch("gw-1:boot2:0", "gw-1", [reading(value=5)])
    for resolution in (Resolution.RAW, None):
        found = await any_store.series(
            "aq-1", "pm25", BASE, BASE + timedelta(minutes=1), timedelta(minutes=1), resolution=resolution
        )
        assert summary(found) == [(BASE, 2, 6.0, 5.0, 7.0, 7.0)]
    assert (await any_store.counts()).readings == 2


async def test_write_messages_stores_several_with_their_dead_letters(any_store: Store) -> None:
    batch = [
        MessageWrite("gw-1:b:1", "gw-1", [reading(value=1)]),
        MessageWrite("gw-2:b:1", "gw-2", [reading("LAeq", 50, device="nm-1")], [letter("gw-2", payload=b"a")]),
        MessageWrite("gw-1:b:2", "gw-1", [], [letter("gw-1", payload=b"b", at=NOW + timedelta(seconds=1))]),
        MessageWrite("gw-1:b:3", "gw-1", [reading(value=2, at=BASE + timedelta(seconds=1))]),
    ]
    assert await any_store.write_messages(batch) == [True, True, True, True]
    assert [(r.device, r.value) for r in await any_store.latest()] == [("aq-1", 2.0), ("nm-1", 50.0)]
    assert sorted(d.letter.payload for d in await any_store.dead_letters(10)) == [b"a", b"b"]
    counts = await any_store.counts()
    assert (counts.series, counts.readings, counts.dead_letters, counts.gateways) == (2, 3, 2, 2)
    assert await any_store.write_messages([]) == []


async def test_dead_letters_newest_first_and_by_gateway(any_store: Store) -> None:
    binary = bytes(range(256))
    await any_store.dead_letter(letter("gw-1", payload=b"first", at=NOW))
    topic = DeadLetter(NOW + timedelta(seconds=1), "nonsense", DeadLetterKind.TOPIC, "bad topic", binary)
    await any_store.dead_letter(topic)
    await any_store.write_batch(
        "gw-2:b:1", "gw-2", [reading()], dead_letters=[letter("gw-2", payload=b"third", at=NOW + timedelta(seconds=2))]
    )
    newest = await any_store.dead_letters(10)
    assert [d.letter.payload for d in newest] == [b"third", binary, b"first"]
    assert (newest[1].letter.kind, newest[1].letter.gateway, newest[1].letter.topic) == (
        DeadLetterKind.TOPIC,
        None,
        "nonsense",
    )
    assert newest[2].letter == letter(
        "gw-1", payload=b"first", at=NOW.replace(microsecond=NOW.microsecond // 1000 * 1000)
    )
    assert [d.letter.payload for d in await any_store.dead_letters(2)] == [b"third", binary]
    only = await any_store.dead_letters(10, gateway="gw-1")
    assert [(d.letter.gateway, d.letter.reason, d.letter.field) for d in only] == [("gw-1", "invalid JSON", "$")]


async def test_series_listing(any_store: Store) -> None:
    await any_store.write_batch(
        "gw-1:b:1", "gw-1", [reading(value=1), reading("temperature", 2, at=BASE + timedelta(hours=1))]
    )
    await any_store.write_batch("gw-1:b:2", "gw-1", [reading(value=3, at=BASE + timedelta(hours=5, seconds=7))])
    await any_store.write_batch(
        "gw-2:b:1", "gw-2", [reading("LAeq", 60, device="nm-1", at=BASE + timedelta(minutes=2))]
    )
    listed = await any_store.list_series()
    assert [(s.device, s.metric, s.unit, s.gateway, s.first, s.last) for s in listed] == [
        ("aq-1", "pm25", "ug/m3", "gw-1", BASE, BASE + timedelta(hours=5, seconds=7)),
        ("aq-1", "temperature", "Cel", "gw-1", BASE + timedelta(hours=1), BASE + timedelta(hours=1)),
        ("nm-1", "LAeq", "dB(A)", "gw-2", BASE + timedelta(minutes=2), BASE + timedelta(minutes=2)),
    ]
    assert [s.metric for s in await any_store.list_series("aq-1")] == ["pm25", "temperature"]
    assert await any_store.list_series("nope") == []


async def test_gateway_status_newer_wins(any_store: Store) -> None:
    received = NOW
    assert await any_store.set_gateway_status(
        "gw-1", GatewayState.ONLINE, boot="b2", at=BASE, agent_version="0.2", received_at=received
    )
    # A late copy of an older status (e.g. a retained message delivered again) changes nothing.
    assert not await any_store.set_gateway_status(
        "gw-1",
        GatewayState.OFFLINE,
        boot="b1",
        at=BASE - timedelta(minutes=1),
        agent_version="0.1",
        received_at=received,
    )
    [status] = await any_store.gateways()
    assert (status.gateway, status.state, status.boot, status.agent_version) == (
        "gw-1",
        GatewayState.ONLINE,
        "b2",
        "0.2",
    )
    assert status.status_at == BASE
    assert await any_store.set_gateway_status(
        "gw-1",
        GatewayState.OFFLINE,
        boot="b2",
        at=BASE + timedelta(minutes=1),
        agent_version="0.2",
        received_at=received,
    )
    assert (await any_store.gateways())[0].state is GatewayState.OFFLINE


async def test_telemetry_makes_a_gateway_known(any_store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await any_store.write_batch("gw-9:b:1", "gw-9", [reading()])
    [status] = await any_store.gateways()
    assert (status.gateway, status.state, status.status_at) == ("gw-9", None, None)
    assert status.last_seen >= before  # when the cloud received it, not the reading's time


async def test_gateway_health_newer_wins(any_store: Store) -> None:
    assert await any_store.gateway_health("gw-1") is None
    received = BASE + timedelta(minutes=5)
    first = health("gw-1", at=BASE + timedelta(minutes=1), depth=3)
    assert await any_store.set_gateway_health(first, received_at=received)
    assert not await any_store.set_gateway_health(health("gw-1", at=BASE, depth=9), received_at=received)
    assert not await any_store.set_gateway_health(first, received_at=received + timedelta(seconds=1))
    stored = await any_store.gateway_health("gw-1")
    assert stored is not None
    assert (stored.gateway, stored.health, stored.received_at) == ("gw-1", first, received)
    newer = health("gw-1", at=BASE + timedelta(minutes=2), boot="boot2", depth=0)
    assert await any_store.set_gateway_health(newer, received_at=received + timedelta(minutes=1))
    [status] = await any_store.gateways()  # a health message makes the gateway known
    assert (status.gateway, status.state) == ("gw-1", None)
    assert status.health is not None
    assert status.health.health == newer
    assert await any_store.gateway_health("gw-2") is None


async def test_rollups_give_the_raw_aggregates(any_store: Store) -> None:
    # Three whole hours ending at the last full hour, a reading every 50 s with varying values,
    # one reading exactly on each hour boundary, and a duplicate that must not count twice.
    end = NOW.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=3)
    rows = [reading(value=(i % 37) * 0.25, at=start + timedelta(seconds=50 * i)) for i in range(3 * 72)]
    messages = [MessageWrite(f"gw-1:b:{k}", "gw-1", rows[k : k + 20]) for k in range(0, len(rows), 20)]
    messages.append(MessageWrite("gw-1:again:1", "gw-1", rows[:3]))
    await any_store.write_messages(messages)

    async def read(every: timedelta, resolution: Resolution | None) -> Series | None:
        return await any_store.series("aq-1", "pm25", start, end, every, resolution=resolution)

    raw_hourly = summary(await read(timedelta(hours=1), Resolution.RAW))
    raw_half = summary(await read(timedelta(minutes=30), Resolution.RAW))
    assert [n for _, n, *_ in raw_hourly] == [72, 72, 72]
    if isinstance(any_store, FlushRollups):
        await any_store.flush_rollups()

    async def same(every: timedelta, resolution: Resolution | None, expected: object) -> bool:
        found = await read(every, resolution)
        return found is not None and summary(found) == expected

    for every, resolution, expected in [
        (timedelta(hours=1), Resolution.HOUR, raw_hourly),
        (timedelta(hours=1), Resolution.MINUTE, raw_hourly),
        (timedelta(minutes=30), Resolution.MINUTE, raw_half),
        (timedelta(hours=1), None, raw_hourly),
    ]:
        await eventually(
            lambda: same(every, resolution, expected),  # noqa: B023 - awaited within the iteration
            what=f"{resolution} windows of {every} equal to the raw ones",
            deadline_s=ROLLUP_DEADLINE_S,
        )
    auto = await read(timedelta(hours=1), None)
    assert auto is not None
    assert auto.resolution is Resolution.HOUR
    explicit = await read(timedelta(hours=1), Resolution.MINUTE)
    assert explicit is not None
    assert explicit.resolution is Resolution.MINUTE


async def test_ingest_snapshots_are_recorded(
    any_store: Store, stored_ingest: Callable[[], list[dict[str, Any]]]
) -> None:
    snapshots = [
        IngestSnapshot(
            "ingester-a",
            NOW - timedelta(seconds=10 * k),
            100 * k,
            5000 * k,
            4990 * k,
            k,
            2 * k,
            0,
            3,
            487.5,
            12.25,
            0.5,
        )
        for k in (1, 2)
    ]
    for snapshot in snapshots:
        await any_store.record_ingest(snapshot)
    rows = stored_ingest()
    assert len(rows) == 2
    for row, snapshot in zip(rows, sorted(snapshots, key=lambda s: s.at), strict=True):
        assert (row["instance"], row["at"]) == (snapshot.instance, to_ms(snapshot.at))
        assert {name: row[name] for name in INGEST_FIELDS} == {name: getattr(snapshot, name) for name in INGEST_FIELDS}


async def test_counts(any_store: Store) -> None:
    await any_store.write_batch("gw-1:b:1", "gw-1", [reading(), reading("temperature", 1)], dead_letters=[letter()])
    await any_store.dead_letter(letter(at=NOW + timedelta(seconds=1)))
    counts = await any_store.counts()
    assert (counts.series, counts.readings, counts.dead_letters, counts.gateways) == (2, 2, 2, 1)
