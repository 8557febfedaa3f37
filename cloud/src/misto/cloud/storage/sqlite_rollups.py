"""Windowed aggregates of the SQLite store from raw readings and from the 1-minute and 1-hour
rollups, and the retention purge. Run on the store's worker thread by :class:`SqliteStore`.

Reading a range: :func:`plan` splits ``[start, end)`` into pieces, each read from one resolution:
the whole rollup windows inside the range from the rollup, the edges that do not fill a whole
rollup window from finer data. So a query that lets the store choose returns exactly what the
raw readings give, as long as they are kept, and reads few rows however long the range.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from misto.cloud.storage.base import Resolution, SeriesWindow, from_ms

#: Finest first; ``RAW`` is read from ``readings``, the others from their rollup table.
RESOLUTIONS: Final = (Resolution.RAW, Resolution.MINUTE, Resolution.HOUR)
ROLLUP_TABLES: Final = {Resolution.MINUTE: "rollup_1m", Resolution.HOUR: "rollup_1h"}
_MS: Final = timedelta(milliseconds=1)


def span_ms(resolution: Resolution) -> int:
    span = resolution.span
    return 1 if span is None else span // _MS


def _floor(ms: int, span: int) -> int:
    return ms - ms % span  # Python's % is never negative for a positive span


def _ceil(ms: int, span: int) -> int:
    return -_floor(-ms, span)


@dataclass(frozen=True, slots=True)
class Piece:
    """Read ``resolution`` over ``[lo, hi)``: raw readings with ``ts`` there, or the rollup windows
    starting there."""

    resolution: Resolution
    lo: int
    hi: int


def plan(
    start: int,
    end: int,
    every: int,
    *,
    resolution: Resolution | None,
    kept_from: Mapping[Resolution, int],
) -> tuple[Resolution, list[Piece]]:
    """The pieces that make up ``[start, end)`` in windows of ``every`` ms, and the resolution of
    the whole windows (what :attr:`Series.resolution` reports).

    ``resolution`` given: only that one, in whole windows overlapping ``[start, end)`` (its span
    must divide ``every``). None: the coarsest whose span divides ``every`` and whose data still
    covers ``start`` (``kept_from``: where retention has deleted everything before), with the
    edges read from finer data where that data is kept, else from the whole window overlapping.
    """
    if resolution is not None:
        span = span_ms(resolution)
        if every % span:
            raise ValueError(f"window length {every} ms is not a multiple of the {resolution.value} resolution")
        return resolution, [Piece(resolution, _floor(start, span), end)]
    choices = [r for r in reversed(RESOLUTIONS) if every % span_ms(r) == 0]  # coarsest first, RAW last

    def covers(r: Resolution, ms: int) -> bool:
        return ms >= kept_from.get(r, ms)

    pieces: list[Piece] = []

    def fill(lo: int, hi: int, options: Sequence[Resolution]) -> None:
        if lo >= hi:
            return
        r = next((c for c in options if covers(c, lo)), options[0])
        if r is Resolution.RAW:
            pieces.append(Piece(r, lo, hi))
            return
        span = span_ms(r)
        finer = options[options.index(r) + 1 :]
        if any(covers(f, lo) for f in finer):
            a, b = _ceil(lo, span), _floor(hi, span)
            if a >= b:
                fill(lo, hi, finer)
                return
            pieces.append(Piece(r, a, b))
            fill(lo, a, finer)
            fill(b, hi, finer)
            return
        # Finer data is gone at lo: whole windows from there; the end edge from finer data if kept.
        b = _floor(hi, span)
        if b <= lo or not any(covers(f, b) for f in finer):
            b = hi
        pieces.append(Piece(r, _floor(lo, span), b))
        fill(b, hi, finer)

    fill(start, end, choices)
    used = max((p.resolution for p in pieces), key=RESOLUTIONS.index, default=Resolution.RAW)
    return used, pieces


@dataclass(slots=True)
class _Acc:
    count: int
    total: float
    low: float
    high: float
    last_ts: int
    last: float

    def merge(self, other: _Acc) -> None:
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        if other.last_ts > self.last_ts:
            self.last_ts, self.last = other.last_ts, other.last


_RAW_SQL: Final = """
WITH w AS (
    SELECT (ts - :origin) / :every AS k, count(*) AS n, sum(value) AS s, min(value) AS lo, max(value) AS hi,
           max(ts) AS lts
    FROM readings WHERE series_id = :id AND ts >= :lo AND ts < :hi GROUP BY k
)
SELECT k, n, s, lo, hi, lts, (SELECT value FROM readings WHERE series_id = :id AND ts = w.lts) FROM w
"""


def _rollup_sql(table: str) -> str:
    return f"""
WITH w AS (
    SELECT (start - :origin) / :every AS k, sum(count) AS n, sum(sum) AS s, min(min) AS lo, max(max) AS hi,
           max(last_ts) AS lts, max(start) AS newest
    FROM {table} WHERE series_id = :id AND start >= :lo AND start < :hi GROUP BY k
)
SELECT k, n, s, lo, hi, lts, (SELECT last FROM {table} WHERE series_id = :id AND start = w.newest) FROM w
"""  # noqa: S608 - a constant table name


_SQL: Final = {Resolution.RAW: _RAW_SQL, **{r: _rollup_sql(t) for r, t in ROLLUP_TABLES.items()}}


def windows(
    db: sqlite3.Connection, series_id: int, pieces: Sequence[Piece], origin: int, every: int
) -> list[SeriesWindow]:
    """The windows (``origin`` + k * ``every``) that hold data, oldest first, merged over ``pieces``."""
    acc: dict[int, _Acc] = {}
    for piece in pieces:
        params = {"origin": origin, "every": every, "id": series_id, "lo": piece.lo, "hi": piece.hi}
        for k, n, s, lo, hi, lts, last in db.execute(_SQL[piece.resolution], params):
            part = _Acc(n, s, lo, hi, lts, last)
            known = acc.get(k)
            if known is None:
                acc[k] = part
            else:
                known.merge(part)
    return [
        SeriesWindow(from_ms(origin + k * every), a.total / a.count, a.low, a.high, a.count, a.last)
        for k, a in sorted(acc.items())
    ]


# -- retention -----------------------------------------------------------------------------


def kept_from(db: sqlite3.Connection) -> dict[Resolution, int]:
    """Per resolution, the time before which retention has deleted its data (absent: nothing deleted)."""
    return {Resolution(r): before for r, before in db.execute("SELECT resolution, before FROM purges")}


def purge(
    db: sqlite3.Connection, now_ms: int, retention: Mapping[Resolution, timedelta | None]
) -> dict[Resolution, int]:
    """Delete, in one transaction, what is older than each resolution's retention before ``now_ms``
    (rollup windows that end before it); record where each now starts. Returns rows deleted.

    Deletes series by series along the primary key, so the cost follows what is deleted, not the
    size of the tables."""
    series_ids = [row[0] for row in db.execute("SELECT id FROM series")]
    deleted: dict[Resolution, int] = {}
    db.execute("BEGIN IMMEDIATE")
    try:
        for resolution, keep in retention.items():
            if keep is None:
                continue
            before = now_ms - keep // _MS
            if resolution is Resolution.RAW:
                sql, cutoff = "DELETE FROM readings WHERE series_id = ? AND ts < ?", before
            else:  # a window is deleted once it lies wholly before the cutoff
                sql = f"DELETE FROM {ROLLUP_TABLES[resolution]} WHERE series_id = ? AND start < ?"  # noqa: S608
                cutoff = _floor(before, span_ms(resolution))
                before = cutoff
            deleted[resolution] = sum(db.execute(sql, (sid, cutoff)).rowcount for sid in series_ids)
            db.execute(
                "INSERT INTO purges (resolution, before) VALUES (?, ?)"
                " ON CONFLICT (resolution) DO UPDATE SET before = max(before, excluded.before)",
                (resolution.value, before),
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return deleted
