"""What is particular to the SQLite store: file format, schema versions, message ids, rollup
tables and retention, threads. The behaviour every store shares: test_store_conformance.py."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cloud.tests.support import T0, health
from misto.cloud.errors import StoreClosedError, StoreError, StoreSchemaError
from misto.cloud.settings import SqliteStoreSettings
from misto.cloud.storage import DeadLetter, DeadLetterKind, LatestReading, open_store
from misto.cloud.storage.base import MessageWrite, Resolution, Series
from misto.cloud.storage.sqlite import SCHEMA_VERSION, SqliteStore
from misto.cloud.storage.sqlite_schema import MIGRATIONS
from misto.protocol import GatewayState, Reading

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
ROLLUP_OF = {MINUTE: Resolution.MINUTE, HOUR: Resolution.HOUR}


def pm25(value: float, seconds: int = 0) -> Reading:
    return Reading("aq-1", "pm25", value, "ug/m3", T0 + timedelta(seconds=seconds))


async def test_file_is_wal_with_schema_version_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "misto.db"  # the directory is created
    async with await SqliteStore.open(path) as store:
        await store.write_batch("gw-1:b:1", "gw-1", [pm25(1)])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    async with await SqliteStore.open(path) as store:
        assert [r.value for r in await store.latest()] == [1.0]
        assert not await store.write_batch("gw-1:b:1", "gw-1", [pm25(2, 5)])  # dedup survives restarts


async def test_a_version_1_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as conn:  # what misto-cloud 0.1 left behind
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO gateways (gateway, state, boot, agent_version, status_at, last_seen)"
                     " VALUES ('gw-1', 'online', 'b1', '0.1.0', 1740830400000, 1740830401000)")  # fmt: skip
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    async with await SqliteStore.open(path) as store:
        [before] = await store.gateways()
        assert (before.gateway, before.state, before.boot, before.health) == ("gw-1", GatewayState.ONLINE, "b1", None)
        assert await store.set_gateway_health(health("gw-1"), received_at=T0)
        [after] = await store.gateways()
        assert (after.state, after.status_at) == (GatewayState.ONLINE, T0)  # the status is kept
        assert after.health is not None
        assert after.health.health == health("gw-1")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(gateways)")]
        assert columns[-3:] == ["health", "health_at", "health_received_at"]
    conn.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreSchemaError, match="schema version 99, newer than this misto-cloud reads"):
        await SqliteStore.open(path)


async def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StoreError, match="open failed"):
        await SqliteStore.open(path)


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "misto.db")
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        await store.latest()


async def test_calls_run_on_one_worker_thread_not_the_loop(tmp_path: Path) -> None:
    seen: set[str] = set()
    async with await SqliteStore.open(tmp_path / "misto.db") as store:
        original = store._latest

        def spy(device: str | None, metric: str | None) -> list[LatestReading]:
            seen.add(threading.current_thread().name)
            return original(device, metric)

        store._latest = spy  # type: ignore[method-assign]
        await asyncio.gather(*(store.latest() for _ in range(20)))
    assert len(seen) == 1
    assert next(iter(seen)).startswith("misto-sqlite")


async def test_old_message_ids_are_pruned_after_retention(tmp_path: Path) -> None:
    now = [T0]
    path = tmp_path / "misto.db"
    async with await SqliteStore.open(path, dedup_retention=timedelta(days=1), clock=lambda: now[0]) as store:
        await store.write_batch("gw-1:b:1", "gw-1", [pm25(1)])
    now[0] = T0 + timedelta(days=2)
    async with await SqliteStore.open(path, dedup_retention=timedelta(days=1), clock=lambda: now[0]) as store:
        assert (await store.counts()).messages == 0
        assert (await store.counts()).readings == 1  # readings are kept; only the dedup window moves


def windows(series: Series | None) -> list[tuple[datetime, int, float, float, float, float]]:
    assert series is not None
    return [(w.start, w.count, w.mean, w.min, w.max, w.last) for w in series.windows]


async def test_a_version_3_database_gets_the_metric_index_used_across_devices(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with sqlite3.connect(path) as conn:  # what misto-cloud before the SQLite dashboards left behind
        conn.executescript(MIGRATIONS[0] + MIGRATIONS[1] + MIGRATIONS[2])
        conn.execute("PRAGMA user_version = 3")
    conn.close()
    async with await SqliteStore.open(path) as store:
        await store.write_batch("gw-1:b:1", "gw-1", [pm25(1.5), Reading("aq-2", "pm25", 2.5, "ug/m3", T0)])
    query = (  # the shape of a city-overview panel: one metric across devices, from a rollup
        "SELECT avg(r.sum / r.count) FROM series AS s JOIN rollup_1m AS r ON r.series_id = s.id"
        " WHERE s.metric = 'pm25' AND r.start >= 0 AND r.start < 9e15"
    )
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        plan = " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert "USING COVERING INDEX series_metric (metric=?)" in plan, plan
        assert "SEARCH r USING PRIMARY KEY (series_id=? AND start>? AND start<?)" in plan, plan
        assert conn.execute(query).fetchone()[0] == 2.0
    conn.close()


def letter(payload: bytes = b"{") -> DeadLetter:
    return DeadLetter(T0, "misto/v1/gw-1/telemetry", DeadLetterKind.DECODE, "invalid JSON", payload, "gw-1", "$")


async def test_a_version_2_database_gets_rollups_built_from_its_readings(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    values = [(0, 1.0), (30, 2.0), (59_999, 4.0), (60, 8.5), (3600 * 1000 + 5, 16.0)]  # (ms after T0, value)
    with sqlite3.connect(path) as conn:  # what misto-cloud before issue 4 left behind
        conn.executescript(MIGRATIONS[0] + MIGRATIONS[1])
        conn.execute(
            "INSERT INTO series (id, device, metric, gateway, unit) VALUES (1, 'aq-1', 'pm25', 'gw-1', 'ug/m3')"
        )
        t0 = 1740830400000  # T0 in ms
        conn.executemany("INSERT INTO readings VALUES (1, ?, ?)", [(t0 + ms, v) for ms, v in values])
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    async with await SqliteStore.open(path) as store:
        span = (T0, T0 + 2 * HOUR)
        for every in (MINUTE, HOUR):
            raw = windows(await store.series("aq-1", "pm25", *span, every, resolution=Resolution.RAW))
            rolled = windows(await store.series("aq-1", "pm25", *span, every, resolution=ROLLUP_OF[every]))
            assert rolled == raw
        assert windows(await store.series("aq-1", "pm25", *span, HOUR, resolution=Resolution.HOUR)) == [
            (T0, 4, 3.875, 1.0, 8.5, 4.0),
            (T0 + HOUR, 1, 16.0, 16.0, 16.0, 16.0),
        ]
        # New readings add to the rollups built by the migration.
        await store.write_batch("gw-1:b:1", "gw-1", [Reading("aq-1", "pm25", 0.5, "ug/m3", T0 + 10 * MINUTE)])
        [first, _] = windows(await store.series("aq-1", "pm25", *span, HOUR, resolution=Resolution.HOUR))
        assert first == (T0, 5, 3.2, 0.5, 8.5, 0.5)
        assert [(r.value, r.ts) for r in await store.latest()] == [(16.0, T0 + HOUR + timedelta(milliseconds=5))]


async def test_a_redelivered_message_writes_nothing_not_even_its_dead_letters(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "misto.db") as store:
        assert await store.write_batch("gw-1:b:1", "gw-1", [pm25(1)])
        assert not await store.write_batch("gw-1:b:1", "gw-1", [pm25(99, 60)], dead_letters=[letter()])
        # Every reading of a message dead-lettered: a redelivery must not dead-letter them again.
        assert await store.write_batch("gw-1:b:2", "gw-1", [], dead_letters=[letter(b"x")])
        again = MessageWrite("gw-1:b:2", "gw-1", [], [letter(b"x")])
        new = MessageWrite("gw-1:b:3", "gw-1", [pm25(3, 120)])
        # In one call too: the second copy of a message in the same batch is recognised.
        assert await store.write_messages([again, new, new]) == [False, True, False]
        counts = await store.counts()
        assert (counts.readings, counts.messages, counts.dead_letters) == (2, 3, 1)
        assert [r.value for r in await store.latest()] == [3.0]


async def test_a_failing_batch_writes_none_of_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "misto.db"
    await (await SqliteStore.open(path)).close()
    with sqlite3.connect(path) as conn:  # a database that refuses one dead letter, as a full disk would
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON dead_letters WHEN NEW.reason = 'boom'"
            " BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    conn.close()
    boom = DeadLetter(T0, "misto/v1/gw-1/telemetry", DeadLetterKind.DECODE, "boom", b"{")
    async with await SqliteStore.open(path) as store:
        good = MessageWrite("gw-1:b:1", "gw-1", [pm25(1)])
        with pytest.raises(StoreError, match="write_messages failed: IntegrityError: refused"):
            await store.write_messages([good, MessageWrite("gw-1:b:2", "gw-1", [pm25(2, 1)], [boom])])
        counts = await store.counts()
        assert (counts.readings, counts.messages, counts.dead_letters, counts.series) == (0, 0, 0, 0)
        assert await store.list_series() == []
        assert await store.write_messages([good]) == [True]  # the series cache did not keep a rolled-back id
        assert [r.value for r in await store.latest()] == [1.0]


async def test_auto_resolution_is_exact_for_ranges_not_on_window_edges(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "misto.db") as store:
        rows = [pm25((i % 13) * 0.5, 7 * i) for i in range(3 * 3600 // 7)]  # 00:00 .. 03:00, every 7 s
        await store.write_batch("gw-1:b:1", "gw-1", rows)
        for start, end, every in [
            (T0 + timedelta(seconds=10), T0 + 3 * HOUR - timedelta(seconds=3), HOUR),
            (T0 + timedelta(minutes=17, seconds=1), T0 + 2 * HOUR + timedelta(minutes=1), 5 * MINUTE),
            (T0 + timedelta(seconds=1), T0 + timedelta(seconds=50), MINUTE),
        ]:
            raw = await store.series("aq-1", "pm25", start, end, every, resolution=Resolution.RAW)
            auto = await store.series("aq-1", "pm25", start, end, every)
            assert windows(auto) == windows(raw)
        coarse = await store.series("aq-1", "pm25", T0 + timedelta(seconds=10), T0 + 3 * HOUR, HOUR)
        assert coarse is not None
        assert coarse.resolution is Resolution.HOUR
        odd = await store.series("aq-1", "pm25", T0, T0 + HOUR, timedelta(seconds=90))
        assert odd is not None
        assert odd.resolution is Resolution.RAW  # 90 s is no multiple of a rollup window


async def test_an_explicit_resolution_must_divide_the_window(tmp_path: Path) -> None:
    async with await SqliteStore.open(tmp_path / "misto.db") as store:
        await store.write_batch("gw-1:b:1", "gw-1", [pm25(1)])
        with pytest.raises(ValueError, match="not a multiple of the 1h resolution"):
            await store.series("aq-1", "pm25", T0, T0 + HOUR, 30 * MINUTE, resolution=Resolution.HOUR)


async def test_retention_purges_each_resolution_and_queries_fall_back_to_coarser_data(tmp_path: Path) -> None:
    now = [T0]
    retention = {Resolution.RAW: timedelta(days=1), Resolution.MINUTE: timedelta(days=2), Resolution.HOUR: None}
    path = tmp_path / "misto.db"
    purge_every = timedelta(minutes=10)
    async with await SqliteStore.open(
        path, retention=retention, clock=lambda: now[0], purge_every=purge_every
    ) as store:
        ages = [timedelta(days=3), timedelta(days=1, hours=12), timedelta(hours=1)]
        await store.write_batch(
            "gw-1:b:1", "gw-1", [pm25(float(i + 1), -age // timedelta(seconds=1)) for i, age in enumerate(ages)]
        )
        everything = (T0 - timedelta(days=4), T0)

        async def lasts(resolution: Resolution | None) -> list[float]:
            found = await store.series("aq-1", "pm25", *everything, HOUR, resolution=resolution)
            return [last for *_, last in windows(found)]

        assert await lasts(Resolution.RAW) == [1.0, 2.0, 3.0]
        now[0] = T0 + purge_every - timedelta(seconds=1)
        await store.write_batch("gw-1:b:2", "gw-1", [])  # too soon for the writes' own purge
        assert (await store.counts()).readings == 3
        now[0] = T0 + purge_every
        await store.write_batch("gw-1:b:3", "gw-1", [])  # this write purges
        assert (await store.counts()).readings == 1
        assert await lasts(Resolution.RAW) == [3.0]
        assert await lasts(Resolution.MINUTE) == [2.0, 3.0]
        assert await lasts(Resolution.HOUR) == [1.0, 2.0, 3.0]
        assert await lasts(None) == [1.0, 2.0, 3.0]
        auto = await store.series("aq-1", "pm25", *everything, HOUR)
        assert auto is not None
        assert auto.resolution is Resolution.HOUR
        # Raw data of the last day is still read exactly; latest and the listing survive the purge.
        assert [r.value for r in await store.latest()] == [3.0]
        [info] = await store.list_series()
        assert (info.first, info.last) == (T0 - timedelta(days=3), T0 - HOUR)
        # purge() on the service's schedule: a day later the last raw and minute data are gone too.
        deleted = await store.purge(T0 + timedelta(days=1))
        assert (deleted[Resolution.RAW], deleted[Resolution.MINUTE]) == (1, 1)
        assert [r.value for r in await store.latest()] == [3.0]


async def test_open_store_takes_the_retention_settings(tmp_path: Path) -> None:
    settings = SqliteStoreSettings(path=tmp_path / "misto.db", raw_retention_days=2, rollup_1m_retention_days=3)
    store = await open_store(settings)
    try:
        assert isinstance(store, SqliteStore)
        await store.write_batch("gw-1:b:1", "gw-1", [pm25(1)])  # T0 is long ago: only a purge deletes it
        deleted = await store.purge(T0 + timedelta(days=2, hours=1))
        assert (deleted[Resolution.RAW], deleted[Resolution.MINUTE], deleted.get(Resolution.HOUR)) == (1, 0, None)
    finally:
        await store.close()


def test_coarser_data_must_be_kept_longer() -> None:
    with pytest.raises(ValueError, match="rollup_1m_retention_days must be at least raw_retention_days"):
        SqliteStoreSettings(raw_retention_days=30, rollup_1m_retention_days=10)
    with pytest.raises(ValueError, match="rollup_1h_retention_days must be at least rollup_1m_retention_days"):
        SqliteStoreSettings(rollup_1h_retention_days=100)
