"""The control repository on a real SQLite file: versions, commands, acks, schema."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from cloud.tests.support import T0
from misto.cloud.control import CommandRecord, CommandState, ControlRepository, config_ref, parse_config_ref
from misto.cloud.errors import StoreClosedError, StoreSchemaError, VersionConflictError
from misto.cloud.storage.sqlite_control import SCHEMA_VERSION, SqliteControlRepository
from misto.protocol import Ack, AckResult

GW = "gw-1"


def ack(ref: str, result: AckResult = AckResult.OK, *, seconds: int = 10, detail: str = "", gateway: str = GW) -> Ack:
    return Ack(schema=1, gateway=gateway, ref=ref, result=result, at=T0 + timedelta(seconds=seconds), detail=detail)


def command(command_id: str, *, gateway: str = GW, minutes: int = 0) -> CommandRecord:
    issued = T0 + timedelta(minutes=minutes)
    return CommandRecord(command_id, gateway, "poll_now", {"device": "aq-1"}, issued, issued + timedelta(minutes=10))


def test_the_sqlite_repository_implements_the_interface(control_db: SqliteControlRepository) -> None:
    assert isinstance(control_db, ControlRepository)


@pytest.mark.parametrize(
    ("ref", "version"), [("config:1", 1), ("config:42", 42), ("config:", None), ("config:x", None), ("abc", None)]
)
def test_config_refs(ref: str, version: int | None) -> None:
    assert parse_config_ref(ref) == version
    if version is not None:
        assert config_ref(version) == ref


async def test_versions_count_up_and_are_never_reused(control_db: SqliteControlRepository) -> None:
    first = await control_db.add_config(GW, {"log_level": "debug"}, version=None, issued_at=T0)
    assert (first.version, first.published_at) == (1, None)
    await control_db.config_published(GW, 1, at=T0 + timedelta(seconds=1))
    # A publish that was not confirmed burns its version: the broker may have delivered it.
    await control_db.add_config(GW, {"log_level": "info"}, version=None, issued_at=T0)
    await control_db.config_published(GW, 2, at=None, error="no PUBACK within 10s")
    status = await control_db.config_status(GW)
    assert status.desired is not None
    assert (status.desired.version, status.desired.config, status.next_version) == (1, {"log_level": "debug"}, 3)
    assert status.desired.published_at == T0 + timedelta(seconds=1)
    assert (status.last_acked, status.applied_version) == (None, None)
    explicit = await control_db.add_config(GW, {}, version=10, issued_at=T0)
    assert explicit.version == 10
    for stale in (10, 2, 1):
        with pytest.raises(VersionConflictError, match=f"version {stale} is not greater than version 10") as exc:
            await control_db.add_config(GW, {}, version=stale, issued_at=T0)
        assert (exc.value.requested, exc.value.latest) == (stale, 10)
    assert (await control_db.add_config(GW, {}, version=None, issued_at=T0)).version == 11
    # Each gateway counts on its own.
    assert (await control_db.add_config("gw-2", {}, version=None, issued_at=T0)).version == 1


async def test_acks_of_versions(control_db: SqliteControlRepository) -> None:
    for version in (1, 2):
        await control_db.add_config(GW, {"v": version}, version=None, issued_at=T0)
        await control_db.config_published(GW, version, at=T0)
    assert await control_db.record_ack(GW, ack("config:1", seconds=5), received_at=T0 + timedelta(seconds=6))
    assert await control_db.record_ack(
        GW, ack("config:2", AckResult.ERROR, detail="devices[0].port: bad"), received_at=T0
    )
    status = await control_db.config_status(GW)
    assert status.applied_version == 1
    assert status.desired is not None
    assert status.desired.version == 2
    assert status.desired.ack is not None
    assert (status.desired.ack.result, status.desired.ack.detail) == (AckResult.ERROR, "devices[0].port: bad")
    assert status.last_acked == status.desired
    # The gateway retries version 2 after a restart and it works: the newer answer wins ...
    assert await control_db.record_ack(GW, ack("config:2", seconds=20), received_at=T0)
    # ... and a late copy of the older answer does not undo it.
    assert await control_db.record_ack(GW, ack("config:2", AckResult.ERROR, seconds=15), received_at=T0)
    status = await control_db.config_status(GW)
    assert status.applied_version == 2
    assert status.desired is not None
    assert status.desired.ack is not None
    assert (status.desired.ack.result, status.desired.ack.at) == (AckResult.OK, T0 + timedelta(seconds=20))


async def test_an_ack_proves_an_unconfirmed_version_was_delivered(control_db: SqliteControlRepository) -> None:
    await control_db.add_config(GW, {"v": 1}, version=None, issued_at=T0)
    await control_db.config_published(GW, 1, at=None, error="connection lost before its PUBACK")
    assert (await control_db.config_status(GW)).desired is None
    received = T0 + timedelta(seconds=3)
    assert await control_db.record_ack(GW, ack("config:1"), received_at=received)
    desired = (await control_db.config_status(GW)).desired
    assert desired is not None
    assert (desired.version, desired.published_at) == (1, received)


async def test_acks_of_unknown_refs_are_refused(control_db: SqliteControlRepository) -> None:
    await control_db.add_config(GW, {}, version=None, issued_at=T0)
    await control_db.add_command(command("c1"))
    assert not await control_db.record_ack(GW, ack("config:2"), received_at=T0)
    assert not await control_db.record_ack(GW, ack("c2"), received_at=T0)
    assert not await control_db.record_ack("gw-2", ack("c1", gateway="gw-2"), received_at=T0)  # another gateway's
    assert not await control_db.record_ack("gw-2", ack("config:1", gateway="gw-2"), received_at=T0)
    assert await control_db.record_ack(GW, ack("c1"), received_at=T0)


async def test_commands_newest_first_with_their_answers(control_db: SqliteControlRepository) -> None:
    for index in range(5):
        await control_db.add_command(command(f"c{index}", minutes=index))
    await control_db.add_command(command("other", gateway="gw-2"))
    await control_db.command_published(GW, "c0", at=T0 + timedelta(seconds=1))
    await control_db.command_published(GW, "c1", at=None, error="not connected")
    await control_db.command_published(GW, "c2", at=T0)
    await control_db.command_published(GW, "c3", at=T0)
    assert await control_db.record_ack(GW, ack("c0", detail="polled"), received_at=T0 + timedelta(seconds=2))
    assert await control_db.record_ack(GW, ack("c3", AckResult.ERROR, detail="no device 'aq-1'"), received_at=T0)
    listed = await control_db.commands(GW, 10)
    assert [c.id for c in listed] == ["c4", "c3", "c2", "c1", "c0"]
    assert [c.id for c in await control_db.commands(GW, 2)] == ["c4", "c3"]
    now = T0 + timedelta(minutes=3)
    states = {c.id: c.state(now) for c in listed}
    assert states == {
        "c4": CommandState.PENDING,  # being published
        "c3": CommandState.ERROR,
        "c2": CommandState.PENDING,
        "c1": CommandState.UNSENT,
        "c0": CommandState.OK,
    }
    c2 = await control_db.command(GW, "c2")
    assert c2 is not None
    assert c2.state(T0 + timedelta(minutes=13)) is CommandState.EXPIRED
    c0 = await control_db.command(GW, "c0")
    assert c0 is not None
    assert c0.args == {"device": "aq-1"}
    assert c0.ack is not None
    assert (c0.ack.detail, c0.ack.received_at) == ("polled", T0 + timedelta(seconds=2))
    assert await control_db.command("gw-2", "c0") is None


async def test_file_is_wal_with_schema_version_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "control.db"
    async with await SqliteControlRepository.open(path) as repository:
        await repository.add_config(GW, {"poll_interval": "5s"}, version=3, issued_at=T0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
    async with await SqliteControlRepository.open(path) as repository:
        assert (await repository.config_status(GW)).next_version == 4


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreSchemaError, match="schema version 99, newer than this misto-cloud reads"):
        await SqliteControlRepository.open(path)


async def test_closed_repository_refuses_calls(tmp_path: Path) -> None:
    repository = await SqliteControlRepository.open(tmp_path / "control.db")
    await repository.close()
    await repository.close()
    with pytest.raises(StoreClosedError, match="control commands"):
        await repository.commands(GW, 1)


async def test_calls_never_block_the_loop(control_db: SqliteControlRepository) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        for index in range(50):
            await control_db.add_command(command(f"c{index}"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert ticks >= 50  # the loop ran while every insert waited on the worker thread
