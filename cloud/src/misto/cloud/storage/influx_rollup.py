"""Rolling up data that arrived too late for the continuous queries.

InfluxDB's continuous queries only recompute the recent windows (``rollup_lateness_s``). A
gateway that replays its buffer after an outage writes readings hours old: the store notes the
minutes such writes touched and rolls them up itself with bounded ``SELECT ... INTO`` statements
(1-minute windows from raw data, then their hours from the 1-minute rollup), in the background
after the write and before any read of a rollup. Noted minutes live in memory only: after a
crash in between, ``misto-cloud`` operators re-run :meth:`LateRollups.backfill` for the range
(docs/influxdb.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

from misto.cloud.errors import StoreError
from misto.cloud.settings import InfluxStoreSettings
from misto.cloud.storage.base import Resolution
from misto.cloud.storage.influx_http import InfluxHttp
from misto.cloud.storage.influx_schema import READING_MEASUREMENTS, rollup_select
from misto.cloud.storage.points import Point

log = logging.getLogger(__name__)

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
MAX_STATEMENT_MS: Final = HOUR_MS  # one SELECT ... INTO covers at most an hour, in a request of its own:
# a day of 1,000 devices in one statement ran past the store's request timeout (store.timeout_s)
_IGNORED: Final = "points beyond retention policy"  # older than the rollup keeps: nothing to do


class LateRollups:
    def __init__(self, http: InfluxHttp, settings: InfluxStoreSettings) -> None:
        self._http = http
        self._settings = settings
        self._dirty: dict[str, set[int]] = {}  # measurement -> minute numbers since the epoch
        self._recent: dict[str, set[int]] = {}  # the same, of data the continuous queries will see
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.statements_run = 0

    @property
    def pending(self) -> bool:
        return any(self._dirty.values())

    def note(self, points: Iterable[Point], now_ms: int) -> None:
        """Remember the minutes of ``points`` too old for the continuous queries to see (to roll up
        soon) and the recent ones (which the continuous queries will see, or :meth:`flush_all`)."""
        horizon = now_ms - self._settings.rollup_lateness_s * 1000
        for point in points:
            target = self._dirty if point.ts_ms < horizon else self._recent
            target.setdefault(point.measurement, set()).add(point.ts_ms // MINUTE_MS)
        # Recent minutes the continuous queries have rolled up by now need no flush any more.
        passed = (horizon - self._settings.rollup_every_s * 1000) // MINUTE_MS - 1
        for minutes in self._recent.values():
            if minutes and min(minutes) < passed:
                minutes.difference_update([m for m in minutes if m < passed])

    async def flush_all(self) -> None:
        """Roll up now everything written, late or recent (tests; before a planned shutdown)."""
        for measurement, minutes in self._recent.items():
            self._dirty.setdefault(measurement, set()).update(minutes)
        self._recent = {}
        await self.flush()

    def schedule(self) -> None:
        """Roll up the noted minutes in the background (one run at a time)."""
        if self.pending and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._background(), name="misto-influx-late-rollups")

    async def _background(self) -> None:
        try:
            await self.flush()
        except StoreError as exc:
            log.warning("rolling up late data failed (kept for the next try): %s", exc)

    async def flush(self) -> None:
        """Roll up every noted minute now (raises :class:`StoreError`; the minutes stay noted)."""
        async with self._lock:
            if not self.pending:
                return
            dirty, self._dirty = self._dirty, {}
            try:
                for measurement, minutes in dirty.items():
                    await self._roll_up(measurement, _runs(sorted(minutes)))
            except BaseException:
                for measurement, minutes in dirty.items():
                    self._dirty.setdefault(measurement, set()).update(minutes)
                raise

    async def backfill(self, start_ms: int, end_ms: int, measurements: Iterable[str] = READING_MEASUREMENTS) -> None:
        """Recompute both rollups of ``[start, end)`` (widened to whole hours) from raw data."""
        first, last = start_ms // MINUTE_MS, -(-end_ms // MINUTE_MS)
        async with self._lock:
            for measurement in measurements:
                await self._roll_up(measurement, [(first, last)])

    async def close(self) -> None:
        if self._task is not None:
            await self._task

    async def _roll_up(self, measurement: str, runs: list[tuple[int, int]]) -> None:
        db = self._settings.database
        minute_ranges = [r for a, b in runs for r in _pieces(a * MINUTE_MS, b * MINUTE_MS)]
        hours = _merge([(a * MINUTE_MS // HOUR_MS * HOUR_MS, -(-b * MINUTE_MS // HOUR_MS) * HOUR_MS) for a, b in runs])
        hour_ranges = [r for a, b in hours for r in _pieces(a, b)]
        statements = [rollup_select(db, measurement, Resolution.MINUTE, start_ms=a, end_ms=b) for a, b in minute_ranges]
        statements += [rollup_select(db, measurement, Resolution.HOUR, start_ms=a, end_ms=b) for a, b in hour_ranges]
        # One request per statement, in order: the hours read the minutes written before them.
        for statement in statements:
            [result] = await self._http.query([statement], operation="roll up late data")
            self.statements_run += 1
            if result.error is not None and _IGNORED not in result.error:
                raise StoreError("roll up late data", f"{self._http.where()}: {result.error}")


def _runs(minutes: list[int]) -> list[tuple[int, int]]:
    """Sorted minute numbers -> ``[first, last + 1)`` runs of consecutive minutes."""
    out: list[tuple[int, int]] = []
    for minute in minutes:
        if out and out[-1][1] == minute:
            out[-1] = (out[-1][0], minute + 1)
        else:
            out.append((minute, minute + 1))
    return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _pieces(start: int, end: int) -> list[tuple[int, int]]:
    return [(a, min(a + MAX_STATEMENT_MS, end)) for a in range(start, end, MAX_STATEMENT_MS)]
