"""The in-memory tail of the SQLite buffer: it answers peeks only while it holds every entry."""

from __future__ import annotations

from misto.edge.buffer import Outbound
from misto.edge.buffer.tail_cache import TailCache


def out(seq: int, size: int = 10) -> Outbound:
    return Outbound("t", b"x" * size, f"m{seq}", 0.0, 1)


def test_complete_until_it_overflows_then_again_once_drained() -> None:
    cache = TailCache(max_entries=3, max_bytes=1000)
    cache.reset(depth=0)
    for i in range(1, 4):
        cache.add(i, out(i))
    assert [e.id for e in cache.peek(10, None) or []] == [1, 2, 3]
    assert [e.id for e in cache.peek(1, 1) or []] == [2]
    cache.add(4, out(4))  # entry 1 is on disk only now
    assert cache.peek(10, None) is None
    cache.remove([2], depth=3)  # disk: 1, 3, 4
    assert cache.peek(10, None) is None
    cache.remove([1], depth=2)  # disk: 3, 4 = the cache
    assert [e.id for e in cache.peek(10, None) or []] == [3, 4]


def test_bounded_by_bytes_and_dropping_the_oldest() -> None:
    cache = TailCache(max_entries=100, max_bytes=25)
    cache.reset(depth=0)
    cache.add(1, out(1))
    cache.add(2, out(2))
    assert cache.complete
    cache.add(3, out(3))  # 30 bytes: entry 1 leaves memory
    assert not cache.complete
    assert len(cache) == 2
    cache.drop_through(2)  # the buffer dropped 1 and 2
    cache.remove([], depth=1)
    assert [e.id for e in cache.peek(10, None) or []] == [3]


def test_a_recovered_buffer_starts_incomplete() -> None:
    cache = TailCache()
    cache.reset(depth=5)
    assert cache.peek(10, None) is None
    cache.reset(depth=0)
    assert cache.peek(10, None) == []
