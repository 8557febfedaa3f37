"""One suite for every Buffer implementation (memory and SQLite), then what only the durable one does:
survive a restart and a kill -9, refuse a second agent, set a corrupt file aside."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from misto.edge.buffer import Buffer, BufferSettings, DropPolicy, MemoryBuffer, Outbound, SyncMode, make_buffer
from misto.edge.buffer.sqlite import SqliteBuffer
from misto.edge.errors import BufferStorageError
from misto.protocol import Reading, Telemetry, codec

BufferFactory = Callable[..., Awaitable[Buffer]]
T0 = 1_750_000_000.0


class FakeTime:
    """Wall-clock seconds the test moves by hand (for ``max_age``)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall() -> FakeTime:
    return FakeTime()


@pytest.fixture(params=["memory", "sqlite"])
async def make(request: pytest.FixtureRequest, tmp_path: Path, wall: FakeTime) -> AsyncIterator[BufferFactory]:
    opened: list[Buffer] = []

    async def factory(max_messages: int = 1000, **limits: Any) -> Buffer:
        buffer: Buffer
        if request.param == "memory":
            buffer = MemoryBuffer(max_messages=max_messages, clock=wall, **limits)
        else:
            path = tmp_path / f"buffer-{len(opened)}.db"
            buffer = SqliteBuffer(path, max_messages=max_messages, clock=wall, **limits)
        await buffer.open()
        opened.append(buffer)
        return buffer

    yield factory
    for buffer in opened:
        await buffer.close()


def message(seq: int, *, size: int = 0, created: float = T0, readings: int = 2) -> Outbound:
    payload = f"payload-{seq}".encode().ljust(size, b".")
    return Outbound("misto/v1/gw-test/telemetry", payload, f"gw-test:b:{seq}", created, readings)


async def fill(buffer: Buffer, count: int, **kwargs: Any) -> list[int | None]:
    return [await buffer.append(message(i, **kwargs)) for i in range(count)]


def balanced(buffer: Buffer) -> bool:
    s = buffer.stats()
    return s.recovered + s.added == s.sent + s.rejected + s.dropped + s.depth


async def test_append_then_peek_in_order(make: BufferFactory) -> None:
    buffer = await make(10)
    ids = await fill(buffer, 3)
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    entries = await buffer.peek(10)
    assert [e.id for e in entries] == ids
    assert [e.message for e in entries] == [message(0), message(1), message(2)]
    assert await buffer.peek(2) == entries[:2]
    assert buffer.depth() == 3  # peeking removes nothing
    stats = buffer.stats()
    assert (stats.bytes, stats.oldest_created) == (sum(message(i).size for i in range(3)), T0)


async def test_peek_after_a_cursor(make: BufferFactory) -> None:
    buffer = await make(10)
    ids = await fill(buffer, 5)
    assert ids[1] is not None
    assert ids[-1] is not None
    assert [e.id for e in await buffer.peek(10, after=ids[1])] == ids[2:]
    assert [e.id for e in await buffer.peek(1, after=ids[1])] == ids[2:3]
    assert await buffer.peek(10, after=ids[-1]) == []


async def test_commit_removes_only_acknowledged_entries(make: BufferFactory) -> None:
    buffer = await make(10)
    ids = [i for i in await fill(buffer, 4) if i is not None]
    assert await buffer.commit([ids[1], ids[3]]) == 2
    assert [e.id for e in await buffer.peek(10)] == [ids[0], ids[2]]
    assert await buffer.commit([ids[1], 999_999]) == 0  # already committed or unknown: ignored
    assert await buffer.commit([]) == 0
    stats = buffer.stats()
    assert (stats.added, stats.sent, stats.rejected, stats.dropped, stats.depth) == (4, 2, 0, 0, 2)
    assert stats.bytes == message(0).size + message(2).size
    assert await buffer.commit([ids[0]]) == 1
    assert buffer.stats().oldest_created == T0  # the head moved on
    assert balanced(buffer)


async def test_reject_is_counted_apart(make: BufferFactory) -> None:
    buffer = await make(10)
    ids = [i for i in await fill(buffer, 3) if i is not None]
    assert await buffer.reject([ids[0]]) == 1
    await buffer.commit([ids[1]])
    stats = buffer.stats()
    assert (stats.added, stats.sent, stats.rejected, stats.dropped, stats.depth) == (3, 1, 1, 0, 1)
    assert balanced(buffer)


async def test_full_buffer_drops_the_oldest_and_counts_readings(make: BufferFactory) -> None:
    buffer = await make(3)
    ids = await fill(buffer, 5, readings=7)
    assert [e.id for e in await buffer.peek(10)] == ids[2:]
    assert [e.message.message_id for e in await buffer.peek(10)] == ["gw-test:b:2", "gw-test:b:3", "gw-test:b:4"]
    stats = buffer.stats()
    assert (stats.added, stats.sent, stats.dropped, stats.dropped_readings, stats.depth) == (5, 0, 2, 14, 3)
    assert ids[0] is not None
    assert await buffer.commit([ids[0]]) == 0  # dropped while in flight: its late acknowledgement is ignored
    assert balanced(buffer)


async def test_drop_newest_keeps_the_past(make: BufferFactory) -> None:
    buffer = await make(3, when_full=DropPolicy.DROP_NEWEST)
    ids = await fill(buffer, 5)
    assert ids[3:] == [None, None]
    assert [e.message.message_id for e in await buffer.peek(10)] == ["gw-test:b:0", "gw-test:b:1", "gw-test:b:2"]
    stats = buffer.stats()
    assert (stats.added, stats.dropped, stats.dropped_readings, stats.depth) == (5, 2, 4, 3)
    assert balanced(buffer)


async def test_bounded_by_bytes(make: BufferFactory) -> None:
    buffer = await make(1000, max_bytes=250)
    await fill(buffer, 4, size=100)  # each 100 bytes: only two fit
    assert [e.message.message_id for e in await buffer.peek(10)] == ["gw-test:b:2", "gw-test:b:3"]
    assert (buffer.stats().bytes, buffer.stats().dropped) == (200, 2)
    assert await buffer.append(message(9, size=251)) is None  # larger than the whole buffer: never fits
    assert buffer.depth() == 2  # and it did not push anything out
    assert buffer.stats().dropped == 3
    assert balanced(buffer)


async def test_old_messages_expire(make: BufferFactory, wall: FakeTime) -> None:
    buffer = await make(1000, max_age=60.0)
    await buffer.append(message(0, created=T0 - 100))
    await buffer.append(message(1, created=T0 - 30))
    await buffer.append(message(2, created=T0))  # the append expires message 0 on its way in
    assert [e.message.message_id for e in await buffer.peek(10)] == ["gw-test:b:1", "gw-test:b:2"]
    wall.now = T0 + 45
    assert await buffer.trim() == 1
    stats = buffer.stats()
    assert (stats.depth, stats.dropped, stats.expired, stats.oldest_created) == (1, 2, 2, T0)
    assert balanced(buffer)


async def test_ids_are_never_reused(make: BufferFactory) -> None:
    buffer = await make(10)
    first = [i for i in await fill(buffer, 2) if i is not None]
    await buffer.commit(first)
    again = [i for i in await fill(buffer, 2) if i is not None]
    assert min(again) > max(first)


async def test_close_twice(make: BufferFactory) -> None:
    buffer = await make(2)
    await fill(buffer, 1)
    await buffer.close()
    await buffer.close()


def test_outbound_from_telemetry() -> None:
    ts = datetime(2025, 1, 1, tzinfo=UTC)
    telemetry = Telemetry(
        schema=1,
        gateway="gw-test",
        boot="b1",
        seq=7,
        sent_at=ts,
        readings=[Reading(device="aq-1", metric="pm25", value=1.5, unit="ug/m3", ts=ts)],
    )
    out = Outbound.telemetry(telemetry)
    assert out.topic == "misto/v1/gw-test/telemetry"
    assert out.message_id == "gw-test:b1:7"
    assert (out.created, out.readings) == (ts.timestamp(), 1)
    assert codec.decode_telemetry(out.payload, topic=out.topic) == telemetry


def test_memory_buffer_needs_room() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryBuffer(max_messages=0)


def test_factory_defaults_per_kind(tmp_path: Path) -> None:
    sqlite = make_buffer(BufferSettings(), path=tmp_path / "b.db")
    assert isinstance(sqlite, SqliteBuffer)
    assert (sqlite.limits.max_messages, sqlite.limits.max_bytes) == (1_000_000, 1024**3)
    memory = make_buffer(BufferSettings(kind="memory", max_bytes="1MB"), path=tmp_path / "unused.db")  # type: ignore[arg-type]
    assert isinstance(memory, MemoryBuffer)
    assert (memory.limits.max_messages, memory.limits.max_bytes) == (10_000, 1024**2)
    assert not (tmp_path / "b.db").exists()  # building does no I/O


# -- the durable buffer ---------------------------------------------------------------------------


async def test_sqlite_survives_a_restart_in_order_with_the_same_ids(tmp_path: Path) -> None:
    path = tmp_path / "state" / "buffer.db"  # the directory is created
    first = SqliteBuffer(path, max_messages=100)
    await first.open()
    ids = await fill(first, 5)
    await first.commit([ids[0]])  # type: ignore[list-item]
    await first.close()

    second = SqliteBuffer(path, max_messages=100)
    await second.open()
    try:
        entries = await second.peek(10)
        assert [e.message for e in entries] == [message(i) for i in range(1, 5)]
        assert [e.id for e in entries] == ids[1:]
        stats = second.stats()
        assert (stats.recovered, stats.added, stats.depth) == (4, 0, 4)
        new = await second.append(message(5))
        assert new is not None
        assert new > max(i for i in ids if i is not None)
        await second.commit([e.id for e in entries])
        assert second.stats().sent == 4  # sent by this run, though added by the previous one
        assert balanced(second)
    finally:
        await second.close()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from misto.edge.buffer import Outbound, SyncMode
    from misto.edge.buffer.sqlite import SqliteBuffer

    async def main() -> None:
        buffer = SqliteBuffer(Path(sys.argv[1]), max_messages=1_000_000, sync=SyncMode(sys.argv[2]))
        await buffer.open()
        seq = 0
        while True:
            entry = await buffer.append(Outbound("t", b"x" * 200, f"gw:b:{seq}", 1.0, 1))
            if seq % 7 == 0:
                await buffer.commit([entry - 3])
            print(seq, flush=True)
            seq += 1

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("sync", list(SyncMode))
async def test_sqlite_loses_nothing_to_kill_9(sync: SyncMode, tmp_path: Path) -> None:
    """A writer appends (and commits some) until SIGKILL: every append it reported is still there."""
    path = tmp_path / "buffer.db"
    child = subprocess.Popen(  # noqa: ASYNC220 - read line by line until the kill
        [sys.executable, "-c", WRITER, str(path), sync.value], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert child.stdout is not None
    try:
        reported = -1
        for line in child.stdout:
            reported = int(line)
            if reported >= 300:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    buffer = SqliteBuffer(path, max_messages=1_000_000)
    await buffer.open()
    try:
        kept = {e.message.message_id for e in await buffer.peek(1_000_000)}
        # The writer may have gone on a little after its last line was read: commits up to 20 further on.
        committed = {f"gw:b:{seq - 3}" for seq in range(0, reported + 20, 7) if seq >= 3}
        assert {f"gw:b:{seq}" for seq in range(reported + 1)} - committed <= kept
        assert buffer.stats().recovered == len(kept)
    finally:
        await buffer.close()


async def test_sqlite_refuses_a_second_agent(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    first = SqliteBuffer(path, max_messages=10)
    await first.open()
    try:
        second = SqliteBuffer(path, max_messages=10)
        with pytest.raises(BufferStorageError, match=rf"in use by another agent \(pid {os.getpid()}\)"):
            await second.open()
    finally:
        await first.close()
    third = SqliteBuffer(path, max_messages=10)
    await third.open()  # free again
    await third.close()


async def test_sqlite_sets_a_corrupt_file_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "buffer.db"
    path.write_bytes(b"this is not a database, just garbage left by a bad card" * 100)
    buffer = SqliteBuffer(path, max_messages=10)
    await buffer.open()
    try:
        assert buffer.depth() == 0
        assert await buffer.append(message(0)) is not None
    finally:
        await buffer.close()
    aside = list(tmp_path.glob("buffer.db.corrupt-*"))  # noqa: ASYNC240 - a test's temp dir
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")
    assert "is unreadable" in caplog.text


async def test_sqlite_cannot_create_its_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    buffer = SqliteBuffer(blocker / "sub" / "buffer.db", max_messages=10)
    with pytest.raises(BufferStorageError, match="cannot create its directory"):
        await buffer.open()
    await buffer.close()


async def test_sqlite_gives_space_back_after_draining(tmp_path: Path) -> None:
    path = tmp_path / "buffer.db"
    buffer = SqliteBuffer(path, max_messages=100_000)
    await buffer.open()
    try:
        ids = await fill(buffer, 2000, size=2000)
        await buffer.commit(i for i in ids if i is not None)
        await buffer.trim()  # checkpoint happens at close; the free pages go back now
    finally:
        await buffer.close()
    assert path.stat().st_size < 1_000_000  # 4 MB were written


async def test_sqlite_peeks_the_same_from_memory_and_from_disk(tmp_path: Path) -> None:
    """The newest entries are also kept in memory (up to 256); beyond that peeks read the disk, until
    the backlog has drained to what memory holds. Either way the answer is the same."""
    buffer = SqliteBuffer(tmp_path / "buffer.db", max_messages=10_000)
    await buffer.open()
    try:
        ids = [i for i in await fill(buffer, 400) if i is not None]
        everything = await buffer.peek(2000)  # more than memory holds: from disk
        assert [e.id for e in everything] == ids
        assert [e.message.message_id for e in await buffer.peek(3, after=ids[300])] == [
            f"gw-test:b:{i}" for i in (301, 302, 303)
        ]
        await buffer.commit(ids[:200])
        assert await buffer.peek(2000) == everything[200:]  # from memory again
        assert await buffer.peek(2, after=ids[398]) == everything[-1:]
        await buffer.append(message(2000))
        assert (await buffer.peek(1, after=ids[-1]))[0].message == message(2000)
    finally:
        await buffer.close()
