"""What is particular to the SQLite store: file format, schema versions, durability settings, threads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from cloud.tests.support import T0, health
from misto.cloud.errors import StoreClosedError, StoreError, StoreSchemaError
from misto.cloud.storage import LatestReading
from misto.cloud.storage.sqlite import SCHEMA_VERSION, SqliteStore
from misto.cloud.storage.sqlite_schema import MIGRATIONS
from misto.protocol import GatewayState, Reading


def pm25(value: float, seconds: int = 0) -> Reading:
    return Reading("aq-1", "pm25", value, "ug/m3", T0 + timedelta(seconds=seconds))


async def test_file_is_wal_with_schema_version_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "misto.db"  # the directory is created
    async with await SqliteStore.open(path) as store:
        await store.write_batch("gw-1:b:1", "gw-1", [pm25(1)])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
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
