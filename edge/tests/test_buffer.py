"""One suite for every Buffer implementation (memory now; the SQLite buffer joins the parameter list)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from misto.edge.buffer import Buffer, MemoryBuffer, Outbound
from misto.protocol import Reading, Telemetry, codec

BufferFactory = Callable[[int], Buffer]


@pytest.fixture(params=["memory"])
def make_buffer(request: pytest.FixtureRequest) -> BufferFactory:
    def make(max_messages: int) -> Buffer:
        match request.param:
            case "memory":
                return MemoryBuffer(max_messages=max_messages)
        raise AssertionError(request.param)

    return make


def message(seq: int) -> Outbound:
    return Outbound(
        topic="misto/v1/gw-test/telemetry", payload=f"payload-{seq}".encode(), message_id=f"gw-test:b:{seq}"
    )


async def fill(buffer: Buffer, count: int) -> list[int]:
    return [await buffer.append(message(i)) for i in range(count)]


async def test_append_then_peek_in_order(make_buffer: BufferFactory) -> None:
    buffer = make_buffer(10)
    ids = await fill(buffer, 3)
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    entries = await buffer.peek(10)
    assert [e.id for e in entries] == ids
    assert [e.message for e in entries] == [message(0), message(1), message(2)]
    assert await buffer.peek(2) == entries[:2]
    assert buffer.depth() == 3  # peeking removes nothing


async def test_peek_after_a_cursor(make_buffer: BufferFactory) -> None:
    buffer = make_buffer(10)
    ids = await fill(buffer, 5)
    assert [e.id for e in await buffer.peek(10, after=ids[1])] == ids[2:]
    assert [e.id for e in await buffer.peek(1, after=ids[1])] == ids[2:3]
    assert await buffer.peek(10, after=ids[-1]) == []


async def test_commit_removes_only_acknowledged_entries(make_buffer: BufferFactory) -> None:
    buffer = make_buffer(10)
    ids = await fill(buffer, 4)
    assert await buffer.commit([ids[1], ids[3]]) == 2
    assert [e.id for e in await buffer.peek(10)] == [ids[0], ids[2]]
    assert await buffer.commit([ids[1], 999_999]) == 0  # already committed or unknown: ignored
    stats = buffer.stats()
    assert (stats.added, stats.sent, stats.rejected, stats.dropped, stats.depth) == (4, 2, 0, 0, 2)


async def test_reject_is_counted_apart(make_buffer: BufferFactory) -> None:
    buffer = make_buffer(10)
    ids = await fill(buffer, 3)
    assert await buffer.reject([ids[0]]) == 1
    await buffer.commit([ids[1]])
    stats = buffer.stats()
    assert (stats.added, stats.sent, stats.rejected, stats.dropped, stats.depth) == (3, 1, 1, 0, 1)


async def test_full_buffer_drops_the_oldest_and_counts(make_buffer: BufferFactory) -> None:
    buffer = make_buffer(3)
    ids = await fill(buffer, 5)
    assert [e.id for e in await buffer.peek(10)] == ids[2:]
    assert [e.message.message_id for e in await buffer.peek(10)] == ["gw-test:b:2", "gw-test:b:3", "gw-test:b:4"]
    stats = buffer.stats()
    assert (stats.added, stats.sent, stats.dropped, stats.depth) == (5, 0, 2, 3)
    assert await buffer.commit([ids[0]]) == 0  # dropped while in flight: its late acknowledgement is ignored


async def test_ids_are_never_reused(make_buffer: BufferFactory) -> None:
    buffer = make_buffer(10)
    first = await fill(buffer, 2)
    await buffer.commit(first)
    again = await fill(buffer, 2)
    assert min(again) > max(first)


async def test_close(make_buffer: BufferFactory) -> None:
    buffer = make_buffer(2)
    await fill(buffer, 1)
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
    assert codec.decode_telemetry(out.payload, topic=out.topic) == telemetry


def test_memory_buffer_needs_room() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryBuffer(max_messages=0)
