"""The InfluxDB store: readings as points (one measurement per sensor kind, tags device and
gateway, metrics as fields) written through the v1 HTTP API, read back with InfluxQL.

Layout and rollups: :mod:`influx_schema`; the wire: :mod:`influx_http`; batching, retries and
dead-lettering of refused points: :mod:`influx_write`; late data: :mod:`influx_rollup`.

Redeliveries: InfluxDB keeps no message ids, but the same series and timestamp written twice is
one point, so a redelivered message never counts twice. The store also remembers the last
``dedup_cache_size`` message ids it wrote and answers False for those; after a restart a
redelivery is simply written again, idempotently (its dead letters, if any, are kept again).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NamedTuple

from misto.cloud.errors import StoreClosedError, StoreError
from misto.cloud.settings import InfluxRollups, InfluxStoreSettings
from misto.cloud.storage.base import (
    DeadLetter,
    DeadLetterKind,
    DeviceInfo,
    GatewayHealth,
    GatewayStatus,
    IngestSnapshot,
    LatestReading,
    MessageWrite,
    Resolution,
    Series,
    SeriesInfo,
    SeriesWindow,
    StoreCounts,
    StoredDeadLetter,
    WritesOneMessage,
    from_ms,
    to_ms,
)
from misto.cloud.storage.influx_http import InfluxHttp, SentRequest, StatementResult
from misto.cloud.storage.influx_queries import (
    ROLLUP_FIELD,
    field_keys,
    ident,
    measurements_by_field,
    rows,
    select_first,
    select_last,
    select_last_time,
    select_windows,
    sources,
    tag_is,
    where,
)
from misto.cloud.storage.influx_rollup import LateRollups
from misto.cloud.storage.influx_schema import (
    RAW_RP,
    READING_MEASUREMENTS,
    RP_OF,
    SchemaReport,
    ensure_schema,
    fields_of,
    rollup_lag,
)
from misto.cloud.storage.influx_write import (
    GATEWAY_SEEN,
    NO_GATEWAY,
    NanoClock,
    dead_letter_line,
    seen_line,
    write_lines,
)
from misto.cloud.storage.line_protocol import line, point_line
from misto.cloud.storage.measurements import (
    DEAD_LETTERS,
    GATEWAY_HEALTH,
    GATEWAY_STATUS,
    health_lines,
    ingest_line,
    status_line,
)
from misto.cloud.storage.points import Point, to_points
from misto.protocol import DecodeError, GatewayState, Health, codec
from misto.protocol.vocabulary import METRICS

log = logging.getLogger(__name__)
__all__ = ["InfluxStore"]

_DAY_MS: Final = 86_400_000
_Window = tuple[int, float, int, float, float, float]  # start ms, sum, count, min, max, last


class _SeriesKey(NamedTuple):
    device: str
    metric: str
    measurements: list[str]
    every_ms: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _unit(metric: str) -> str:
    known = METRICS.get(metric)
    return known.unit if known is not None else ""


class InfluxStore(WritesOneMessage):
    """Open with :meth:`open`; close with :meth:`close` (or ``async with``)."""

    def __init__(
        self, settings: InfluxStoreSettings, http: InfluxHttp, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.settings = settings
        self.http = http
        self.schema_report = SchemaReport([])
        self.rollups = LateRollups(http, settings)
        self._clock = clock
        self._nanos = NanoClock()
        self._limit = asyncio.Semaphore(settings.max_concurrent_writes)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._control = asyncio.Lock()  # read-then-write of gateway status and health
        self._closed = False
        self.refused_points = 0

    @classmethod
    async def open(
        cls,
        settings: InfluxStoreSettings,
        *,
        clock: Callable[[], datetime] = _utc_now,
        request_hook: Callable[[SentRequest], None] | None = None,
    ) -> InfluxStore:
        """Connect and (with ``setup: create``) create or update the database, retention policies
        and continuous queries. ``request_hook`` sees every request sent (tests, diagnostics)."""
        http = InfluxHttp(settings, request_hook=request_hook)
        try:
            report = await ensure_schema(http, settings)
        except BaseException:
            await http.close()
            raise
        store = cls(settings, http, clock=clock)
        store.schema_report = report
        return store

    async def __aenter__(self) -> InfluxStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.rollups.close()
            if self.rollups.pending:  # late data noted but not rolled up yet: now or never (in memory only)
                await self.rollups.flush()
        except StoreError as exc:
            log.warning("late data not rolled up at close (see docs/influxdb.md, backfill): %s", exc)
        finally:
            await self.http.close()

    def _check(self, operation: str) -> None:
        if self._closed:
            raise StoreClosedError(operation)

    # -- writes ----------------------------------------------------------------------------

    async def write_messages(self, batch: Sequence[MessageWrite]) -> list[bool]:
        self._check("write_messages")
        received = self._clock()
        results: list[bool] = []
        fresh: set[str] = set()
        lines: list[str] = []
        owners: list[int] = []
        points: list[Point] = []
        letters: list[DeadLetter] = []
        per_gateway: Counter[str] = Counter()
        for index, message in enumerate(batch):
            if message.message_id in self._recent or message.message_id in fresh:
                results.append(False)
                continue
            fresh.add(message.message_id)
            results.append(True)
            per_gateway[message.gateway] += 1
            letters.extend(message.dead_letters)
            for point in to_points(message.gateway, message.readings):
                try:
                    text = point_line(point)
                except ValueError as exc:  # a non-finite value: line protocol cannot carry it
                    letters.append(_refused_letter(message, repr(point), str(exc), received))
                    continue
                lines.append(text)
                owners.append(index)
                points.append(point)
        deadline = self.http.deadline()
        refused = await write_lines(
            self.http,
            lines,
            precision="ms",
            batch_points=self.settings.batch_points,
            limit=self._limit,
            rp=RAW_RP,
            deadline=deadline,
            operation="write readings",
        )
        for bad in refused:
            log.warning("InfluxDB refused a point (dead-lettered): %s: %s", bad.reason, lines[bad.index][:200])
            letters.append(_refused_letter(batch[owners[bad.index]], lines[bad.index], bad.reason, received))
        self.refused_points += len(refused)
        received_ms = to_ms(received)
        meta = [dead_letter_line(letter, self._nanos.at(to_ms(letter.received_at))) for letter in letters]
        meta += [seen_line(gateway, n, self._nanos.at(received_ms)) for gateway, n in per_gateway.items()]
        await self._write_meta(meta, deadline)
        if self.settings.rollups is InfluxRollups.CONTINUOUS_QUERIES:
            self.rollups.note(points, received_ms)
            self.rollups.schedule()
        self._remember(fresh)
        return results

    async def _write_meta(self, meta: list[str], deadline: float) -> None:
        refused = await write_lines(
            self.http,
            meta,
            precision="ns",
            batch_points=self.settings.batch_points,
            limit=self._limit,
            rp=RAW_RP,
            deadline=deadline,
            operation="write dead letters",
        )
        for bad in refused:  # our own lines: a bug or a hand-made field of another type; not worth a retry loop
            log.error("InfluxDB refused a bookkeeping point (lost): %s: %s", bad.reason, meta[bad.index][:500])

    async def _write(self, lines: list[str], precision: str, operation: str) -> None:
        refused = await write_lines(
            self.http,
            lines,
            precision=precision,
            batch_points=self.settings.batch_points,
            limit=self._limit,
            rp=RAW_RP,
            deadline=self.http.deadline(),
            operation=operation,
        )
        for bad in refused:
            log.error("InfluxDB refused a %s point: %s: %s", operation, bad.reason, lines[bad.index][:500])

    def _remember(self, ids: set[str]) -> None:
        size = self.settings.dedup_cache_size
        if size == 0:
            return
        for message_id in ids:
            self._recent[message_id] = None
            self._recent.move_to_end(message_id)
        while len(self._recent) > size:
            self._recent.popitem(last=False)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self._check("dead_letter")
        await self._write_meta(
            [dead_letter_line(letter, self._nanos.at(to_ms(letter.received_at)))], self.http.deadline()
        )

    async def record_ingest(self, snapshot: IngestSnapshot) -> None:
        self._check("record_ingest")
        await self._write([ingest_line(snapshot)], "ms", "record ingest")

    async def set_gateway_status(
        self,
        gateway: str,
        state: GatewayState,
        *,
        boot: str,
        at: datetime,
        agent_version: str,
        received_at: datetime,
    ) -> bool:
        self._check("set_gateway_status")
        at_ms = to_ms(at)
        async with self._control:
            stored = await self._last_time(GATEWAY_STATUS, "online", gateway, "set_gateway_status")
            if stored is not None and at_ms < stored:
                return False
            online = state is GatewayState.ONLINE
            await self._write(
                [status_line(gateway, online=online, boot=boot, agent_version=agent_version, at_ms=at_ms)],
                "ms",
                "set_gateway_status",
            )
            await self._write([seen_line(gateway, 0, self._nanos.at(to_ms(received_at)))], "ns", "set_gateway_status")
        return True

    async def set_gateway_health(self, health: Health, *, received_at: datetime) -> bool:
        self._check("set_gateway_health")
        at_ms, received_ms = to_ms(health.at), to_ms(received_at)
        async with self._control:
            stored = await self._last_time(GATEWAY_HEALTH, "json", health.gateway, "set_gateway_health")
            if stored is not None and at_ms <= stored:
                return False
            document = codec.encode(health).decode()
            extra = line(
                GATEWAY_HEALTH, {"gateway": health.gateway}, {"json": document, "received_ms": received_ms}, at_ms
            )
            await self._write([*health_lines(health), extra], "ms", "set_gateway_health")
            await self._write([seen_line(health.gateway, 0, self._nanos.at(received_ms))], "ns", "set_gateway_health")
        return True

    async def _last_time(self, measurement: str, field: str, gateway: str, operation: str) -> int | None:
        statement = (
            f"SELECT last({ident(field)}) FROM {sources(RAW_RP, [measurement])}{where(tag_is('gateway', gateway))}"
        )
        [result] = await self.http.query_ok([statement], operation=operation)
        times = [row.time for row in rows(result)]
        return max(times) if times else None

    # -- reads -----------------------------------------------------------------------------

    async def _fields(self, operation: str) -> dict[str, list[str]]:
        """Reading fields -> the measurements that hold them."""
        [result] = await self.http.query_ok(
            [f"SHOW FIELD KEYS FROM {', '.join(ident(m) for m in READING_MEASUREMENTS)}"], operation=operation
        )
        return measurements_by_field(field_keys(result))

    async def latest(self, device: str | None = None, metric: str | None = None) -> list[LatestReading]:
        self._check("latest")
        by_field = await self._fields("latest")
        fields = [f for f in ([metric] if metric is not None else sorted(by_field)) if f in by_field]
        if not fields:
            return []
        statements = [select_last(f, RAW_RP, by_field[f], device=device) for f in fields]
        results = await self.http.query_ok(statements, operation="latest")
        out = []
        for f, result in zip(fields, results, strict=True):
            newest: dict[str, tuple[int, float, str]] = {}
            for row in rows(result):
                dev = row.tags.get("device", "")
                if dev not in newest or row.time > newest[dev][0]:
                    newest[dev] = (row.time, float(row.values["value"]), row.tags.get("gateway", ""))
            out += [LatestReading(dev, f, value, _unit(f), from_ms(ts), gw) for dev, (ts, value, gw) in newest.items()]
        return sorted(out, key=lambda r: (r.device, r.metric))

    async def devices(self) -> list[DeviceInfo]:
        by_device: dict[str, list[LatestReading]] = {}
        for reading in await self.latest():
            by_device.setdefault(reading.device, []).append(reading)
        devices = []
        for device, latest in by_device.items():
            newest = max(latest, key=lambda r: r.ts)
            devices.append(DeviceInfo(device, newest.gateway, newest.ts, tuple(latest)))
        return devices

    async def list_series(self, device: str | None = None) -> list[SeriesInfo]:
        self._check("list_series")
        by_field = await self._fields("list_series")
        fields = sorted(by_field)
        if not fields:
            return []
        rollups = self.settings.rollups is not InfluxRollups.NONE
        hour = RP_OF[Resolution.HOUR]
        statements = []
        for f in fields:
            ms = by_field[f]
            statements += [select_first(f, RAW_RP, ms, device=device), select_last(f, RAW_RP, ms, device=device)]
            if rollups:
                statements += [
                    select_first(f, hour, ms, device=device, column=f"last_{f}"),
                    select_last(f, hour, ms, device=device, column=f"last_{f}"),
                ]
        results = await self.http.query_ok(statements, operation="list_series")
        per = 4 if rollups else 2
        horizon = self._horizon(self.settings.raw_retention_days)
        out = []
        for i, f in enumerate(fields):
            parts = results[i * per : (i + 1) * per]
            firsts, lasts = _times(parts[0]), _times(parts[1])
            roll_firsts, roll_lasts = (_times(parts[2]), _times(parts[3])) if rollups else ({}, {})
            for dev in sorted(set(firsts) | set(lasts) | set(roll_lasts)):
                candidates = [firsts[dev][0]] if dev in firsts else []
                if dev in roll_firsts and (dev not in firsts or roll_firsts[dev][0] < horizon):
                    candidates.append(roll_firsts[dev][0])
                last, gateway = lasts.get(dev) or roll_lasts[dev]
                first = min(candidates) if candidates else last
                out.append(SeriesInfo(dev, f, _unit(f), gateway, from_ms(first), from_ms(last)))
        return sorted(out, key=lambda s: (s.device, s.metric))

    def _horizon(self, days: int | None) -> int:
        """The oldest time (ms) a retention policy of ``days`` still holds."""
        return -(2**62) if days is None else to_ms(self._clock()) - days * _DAY_MS

    async def series(
        self,
        device: str,
        metric: str,
        start: datetime,
        end: datetime,
        every: timedelta,
        *,
        resolution: Resolution | None = None,
    ) -> Series | None:
        self._check("series")
        every_ms = every // timedelta(milliseconds=1)
        if every_ms <= 0:
            raise ValueError(f"window length must be at least 1 ms, got {every}")
        start_ms, end_ms, now_ms = to_ms(start), to_ms(end), to_ms(self._clock())
        if resolution is not None:
            self._check_resolution(resolution, every_ms)
        measurements = [m for m in READING_MEASUREMENTS if metric in fields_of(m)] or list(READING_MEASUREMENTS)
        gateway = await self._series_gateway(device, metric, measurements)
        if gateway is None:
            return None
        chosen = resolution if resolution is not None else self._choose(every_ms, start_ms)
        key = _SeriesKey(device, metric, measurements, every_ms)
        # A rollup serves whole windows only: a partial first or last window comes from raw data,
        # and so do (when the store chose) the newest windows, which continuous queries may still rewrite.
        first = -(-start_ms // every_ms) * every_ms
        last = end_ms // every_ms * every_ms
        if chosen is not Resolution.RAW and resolution is None:
            lagging = (now_ms - rollup_lag(self.settings, chosen) // timedelta(milliseconds=1)) // every_ms * every_ms
            if lagging >= self._horizon(self.settings.raw_retention_days):
                last = min(last, lagging)
        if chosen is Resolution.RAW or first >= last:
            if resolution is None:
                chosen = Resolution.RAW
            windows = await self._windows(RAW_RP, key, start_ms, end_ms)
        else:
            await self.rollups.flush()  # late data noted (or being rolled up in the background) first
            windows = await self._windows(RAW_RP, key, start_ms, first) if start_ms < first else []
            windows += await self._windows(RP_OF[chosen], key, first, last)
            windows += await self._windows(RAW_RP, key, last, end_ms) if last < end_ms else []
        return Series(
            device,
            metric,
            _unit(metric),
            gateway,
            tuple(SeriesWindow(from_ms(t), s / n, lo, hi, n, last) for t, s, n, lo, hi, last in windows if n > 0),
            chosen,
        )

    def _check_resolution(self, resolution: Resolution, every_ms: int) -> None:
        span = resolution.span
        if span is None:
            return
        if self.settings.rollups is InfluxRollups.NONE:
            raise ValueError(
                f"no {resolution.value} rollup: this InfluxDB store keeps raw data only (store.rollups: none)"
            )
        if every_ms % (span // timedelta(milliseconds=1)) != 0:
            raise ValueError(f"window length {every_ms} ms is not a multiple of the {resolution.value} rollup")

    def _choose(self, every_ms: int, start_ms: int) -> Resolution:
        """The coarsest resolution that divides ``every`` and still holds ``start``; if none holds
        it, the coarsest that divides ``every`` (it holds the most)."""
        if self.settings.rollups is InfluxRollups.NONE:
            return Resolution.RAW
        days = {
            Resolution.HOUR: self.settings.rollup_1h_retention_days,
            Resolution.MINUTE: self.settings.rollup_1m_retention_days,
            Resolution.RAW: self.settings.raw_retention_days,
        }
        dividing = [r for r in days if r.span is None or every_ms % (r.span // timedelta(milliseconds=1)) == 0]
        for candidate in dividing:
            if start_ms >= self._horizon(days[candidate]):
                return candidate
        return dividing[0]

    async def _series_gateway(self, device: str, metric: str, measurements: list[str]) -> str | None:
        """The gateway of the series' newest point (raw, else rollups); None if it has none."""
        statements = [select_last(metric, RAW_RP, measurements, device=device)]
        if self.settings.rollups is not InfluxRollups.NONE:
            statements += [
                select_last(metric, RP_OF[resolution], measurements, device=device, column=f"last_{metric}")
                for resolution in (Resolution.MINUTE, Resolution.HOUR)
            ]
        for result in await self.http.query_ok(statements, operation="series"):
            found = _times(result)
            if device in found:
                return found[device][1]
        return None

    async def _windows(self, rp: str, key: _SeriesKey, start: int, end: int) -> list[_Window]:
        device, metric, measurements, every = key
        raw = rp == RAW_RP
        statement = select_windows(
            metric, rp, measurements, device=device, start_ms=start, end_ms=end, every_ms=every, raw=raw
        )
        [result] = await self.http.query_ok([statement], operation="series")
        found: dict[int, list[tuple[str, list[Any]]]] = {}
        for series in result.series:
            for values in series.get("values", []):
                if values[2]:
                    found.setdefault(int(values[0]), []).append((series["name"], values))
        column = metric if raw else f"last_{metric}"
        ties = {t: parts for t, parts in found.items() if len(parts) > 1}
        newest: dict[int, str] = {}
        if ties:  # the metric sits in two measurements in one window: the newest point's last wins
            asks = [(t, name) for t, parts in ties.items() for name, _ in parts]
            statements = [
                select_last_time(column, rp, name, device=device, start_ms=t, end_ms=t + every) for t, name in asks
            ]
            answers = await self.http.query_ok(statements, operation="series")
            best: dict[int, int] = {}
            for (t, name), answer in zip(asks, answers, strict=True):
                times = [row.time for row in rows(answer)]
                if times and (t not in best or times[0] > best[t]):
                    best[t], newest[t] = times[0], name
        out: list[_Window] = []
        for t in sorted(found):
            parts = found[t]
            pick = next((v for name, v in parts if name == newest.get(t)), parts[-1][1])
            out.append(
                (
                    t,
                    sum(float(v[1]) for _, v in parts),
                    sum(int(v[2]) for _, v in parts),
                    min(float(v[3]) for _, v in parts),
                    max(float(v[4]) for _, v in parts),
                    float(pick[5]),
                )
            )
        return out

    async def dead_letters(self, limit: int, gateway: str | None = None) -> list[StoredDeadLetter]:
        self._check("dead_letters")
        if limit <= 0:
            return []
        statement = (
            f"SELECT * FROM {sources(RAW_RP, [DEAD_LETTERS])}{where(tag_is('gateway', gateway))}"
            f" ORDER BY time DESC LIMIT {int(limit)}"
        )
        [result] = await self.http.query_ok([statement], operation="dead_letters", epoch="ns")
        return [_stored_letter(row.time, row.values) for row in rows(result)]

    async def ping(self) -> None:
        self._check("ping")
        await self.http.ping()

    async def counts(self) -> StoreCounts:
        self._check("counts")
        statements = [
            f"SELECT count(*) FROM {sources(RAW_RP, READING_MEASUREMENTS)} GROUP BY {ident('device')}",
            f"SELECT count({ident('reason')}) FROM {sources(RAW_RP, [DEAD_LETTERS])}",
            f"SELECT sum({ident('messages')}) FROM {sources(RAW_RP, [GATEWAY_SEEN])}",
        ]
        readings_result, letters_result, messages_result = await self.http.query_ok(statements, operation="counts")
        series: set[tuple[str, str]] = set()
        readings = 0
        for row in rows(readings_result):
            for column, value in row.values.items():
                metric = column.removeprefix("count_")
                if column.startswith("count_") and value and not ROLLUP_FIELD.match(metric):
                    series.add((row.tags.get("device", ""), metric))
                    readings += int(value)
        letters = sum(int(row.values["count"] or 0) for row in rows(letters_result))
        messages = sum(int(row.values["sum"] or 0) for row in rows(messages_result))
        gateways = len(await self.gateways())
        return StoreCounts(len(series), readings, messages, letters, gateways)

    async def gateway_health(self, gateway: str) -> GatewayHealth | None:
        self._check("gateway_health")
        [result] = await self.http.query_ok([_health_statement(gateway)], operation="gateway_health")
        for row in rows(result):
            return _read_health(gateway, row.values)
        return None

    async def gateways(self) -> list[GatewayStatus]:
        self._check("gateways")
        by_gateway = f"GROUP BY {ident('gateway')} ORDER BY time DESC LIMIT 1"
        statements = [
            f"SELECT {ident('online')}, {ident('boot')}, {ident('agent_version')} FROM "
            f"{sources(RAW_RP, [GATEWAY_STATUS])} {by_gateway}",
            _health_statement(None),
            f"SELECT last({ident('messages')}) FROM {sources(RAW_RP, [GATEWAY_SEEN])} GROUP BY {ident('gateway')}",
        ]
        status_result, health_result, seen_result = await self.http.query_ok(statements, operation="gateways")
        statuses = {row.tags["gateway"]: row for row in rows(status_result)}
        healths = {row.tags["gateway"]: row for row in rows(health_result)}
        seen = {row.tags["gateway"]: row.time for row in rows(seen_result)}
        out = []
        for gateway in sorted(set(statuses) | set(healths) | set(seen)):
            status = statuses.get(gateway)
            health_row = healths.get(gateway)
            health = _read_health(gateway, health_row.values) if health_row is not None else None
            times = [seen.get(gateway), to_ms(health.received_at) if health else None]
            if all(t is None for t in times):  # the bookkeeping point is gone (retention): the gateway's own time
                times.append(status.time if status else None)
            online = status.values.get("online") if status else None
            out.append(
                GatewayStatus(
                    gateway=gateway,
                    state=None if online is None else (GatewayState.ONLINE if online else GatewayState.OFFLINE),
                    boot=status.values.get("boot") if status else None,
                    agent_version=status.values.get("agent_version") if status else None,
                    status_at=from_ms(status.time) if status else None,
                    last_seen=from_ms(max((t for t in times if t is not None), default=0)),
                    health=health,
                )
            )
        return out

    async def flush_rollups(self) -> None:
        """Compute now the rollups of everything this store wrote (:class:`FlushRollups`), instead
        of waiting for the continuous queries."""
        self._check("flush_rollups")
        if self.settings.rollups is InfluxRollups.CONTINUOUS_QUERIES:
            await self.rollups.flush_all()

    async def backfill(self, start: datetime, end: datetime) -> None:
        """Recompute the 1-minute and 1-hour rollups of ``[start, end)`` from raw data (e.g.
        after data was imported, or after a crash lost the note of late data to roll up)."""
        self._check("backfill")
        await self.rollups.backfill(to_ms(start), to_ms(end))


def _times(result: StatementResult) -> dict[str, tuple[int, str]]:
    """device -> (time, gateway) of the newest (or, for ``first``, oldest) row."""
    out: dict[str, tuple[int, str]] = {}
    for row in rows(result):
        device = row.tags.get("device", "")
        if device not in out or row.time > out[device][0]:
            out[device] = (row.time, row.tags.get("gateway", ""))
    return out


def _health_statement(gateway: str | None) -> str:
    return (
        f"SELECT {ident('json')}, {ident('received_ms')} FROM {sources(RAW_RP, [GATEWAY_HEALTH])}"
        f"{where(tag_is('gateway', gateway))} GROUP BY {ident('gateway')} ORDER BY time DESC LIMIT 1"
    )


def _read_health(gateway: str, values: dict[str, Any] | Any) -> GatewayHealth | None:
    document, received = values.get("json"), values.get("received_ms")
    if not isinstance(document, str) or received is None:
        return None
    try:
        health = codec.decode(document.encode(), Health)
    except DecodeError as exc:
        log.warning("stored health of gateway %s is unreadable (%s); shown as none", gateway, exc)
        return None
    return GatewayHealth(gateway=gateway, health=health, received_at=from_ms(int(received)))


def _refused_letter(message: MessageWrite, text: str, reason: str, received: datetime) -> DeadLetter:
    kind = DeadLetterKind.TIMESTAMP if "beyond retention policy" in reason else DeadLetterKind.VOCABULARY
    return DeadLetter(
        received_at=received,
        topic=f"misto/v1/{message.gateway}/telemetry",
        kind=kind,
        reason=f"InfluxDB refused the point: {reason}",
        payload=text.encode(),
        gateway=message.gateway,
        message_id=message.message_id,
    )


def _stored_letter(ns: int, values: dict[str, Any] | Any) -> StoredDeadLetter:
    gateway = values.get("gateway")
    return StoredDeadLetter(
        ns,
        DeadLetter(
            received_at=from_ms(ns // 1_000_000),
            topic=values.get("topic") or "",
            kind=DeadLetterKind(str(values.get("kind"))),
            reason=values.get("reason") or "",
            payload=base64.b64decode(values.get("payload") or ""),
            gateway=None if gateway in (None, NO_GATEWAY) else gateway,
            field=values.get("field"),
            message_id=values.get("message_id"),
        ),
    )
