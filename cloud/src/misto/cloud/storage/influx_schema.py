"""The InfluxDB store's database layout: retention policies ``raw`` (the default), ``rollup_1m``
and ``rollup_1h``, and the continuous queries that fill the rollups (InfluxDB 1.x).

Each rollup point keeps, per field ``f`` of the raw measurement, ``mean_f``, ``min_f``, ``max_f``,
``count_f``, ``last_f`` and ``sum_f`` of one window, with the raw point's tags. ``rollup_1m`` is
computed from raw data; ``rollup_1h`` from ``rollup_1m`` (the hour's mean is ``sum(sum_f) /
sum(count_f)``, never a mean of means). The same SELECT ... INTO statements, bounded in time,
roll up data that arrived too late for the continuous queries (:mod:`influx_rollup`).

:func:`ensure_schema` is idempotent: it creates what is missing, alters a retention policy whose
duration changed and drops and re-creates a continuous query whose definition changed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from misto.cloud.settings import InfluxRollups, InfluxSetup, InfluxStoreSettings
from misto.cloud.storage.base import Resolution
from misto.cloud.storage.influx_http import InfluxHttp, InfluxUnusableError
from misto.cloud.storage.influx_queries import ident, time_range
from misto.protocol.vocabulary import METRICS, SensorKind

log = logging.getLogger(__name__)

RAW_RP: Final = "raw"
RP_OF: Final = {Resolution.RAW: RAW_RP, Resolution.MINUTE: "rollup_1m", Resolution.HOUR: "rollup_1h"}
READING_MEASUREMENTS: Final = tuple(kind.value for kind in SensorKind)
AGGREGATES: Final = ("mean", "min", "max", "count", "last", "sum")


def fields_of(measurement: str) -> tuple[str, ...]:
    """The metrics :mod:`misto.cloud.storage.points` may put into ``measurement``: those of its
    kind, and the device-state metrics (which join any kind)."""
    out = []
    for name, metric in METRICS.items():
        kinds = [k.value for k in metric.kinds if k is not SensorKind.DEVICE]
        if measurement in kinds or not kinds:
            out.append(name)
    return tuple(out)


def rollup_select(
    db: str, measurement: str, resolution: Resolution, *, start_ms: int | None = None, end_ms: int | None = None
) -> str:
    """``SELECT ... INTO`` the rollup ``resolution`` of ``measurement``, over ``[start, end)`` if given."""
    parts = []
    for f in fields_of(measurement):
        if resolution is Resolution.MINUTE:
            parts += [f"{agg}({ident(f)}) AS {ident(f'{agg}_{f}')}" for agg in AGGREGATES]
        else:
            s, c = ident(f"sum_{f}"), ident(f"count_{f}")
            parts += [
                f"sum({s}) / sum({c}) AS {ident(f'mean_{f}')}",
                f"min({ident(f'min_{f}')}) AS {ident(f'min_{f}')}",
                f"max({ident(f'max_{f}')}) AS {ident(f'max_{f}')}",
                f"sum({c}) AS {c}",
                f"last({ident(f'last_{f}')}) AS {ident(f'last_{f}')}",
                f"sum({s}) AS {s}",
            ]
    source = RP_OF[Resolution.RAW] if resolution is Resolution.MINUTE else RP_OF[Resolution.MINUTE]
    where = f" WHERE {time_range(start_ms, end_ms)}" if start_ms is not None and end_ms is not None else ""
    span = "1m" if resolution is Resolution.MINUTE else "1h"
    return (
        f"SELECT {', '.join(parts)} INTO {ident(db)}.{ident(RP_OF[resolution])}.{ident(measurement)}"
        f" FROM {ident(db)}.{ident(source)}.{ident(measurement)}{where} GROUP BY time({span}), *"
    )


@dataclass(frozen=True, slots=True)
class ContinuousQuery:
    name: str
    text: str


def continuous_queries(settings: InfluxStoreSettings) -> list[ContinuousQuery]:
    """One CQ per reading measurement and rollup. They run every ``rollup_every_s`` and recompute
    the windows that data arriving up to ``rollup_lateness_s`` late may still change."""
    every = settings.rollup_every_s
    late = settings.rollup_lateness_s
    cover = {Resolution.MINUTE: 60 + every + late, Resolution.HOUR: 3600 + 60 + 2 * every + late}
    out = []
    for resolution in (Resolution.MINUTE, Resolution.HOUR):
        for measurement in READING_MEASUREMENTS:
            name = f"misto_{RP_OF[resolution]}_{measurement}"
            select = rollup_select(settings.database, measurement, resolution)
            text = (
                f"CREATE CONTINUOUS QUERY {ident(name)} ON {ident(settings.database)} "
                f"RESAMPLE EVERY {duration(every)} FOR {duration(cover[resolution])} BEGIN {select} END"
            )
            out.append(ContinuousQuery(name, text))
    return out


def rollup_lag(settings: InfluxStoreSettings, resolution: Resolution) -> timedelta:
    """How long after a window ends the continuous queries may still rewrite it: queries read
    newer windows from raw data."""
    every, late = settings.rollup_every_s, settings.rollup_lateness_s
    if resolution is Resolution.MINUTE:
        return timedelta(seconds=60 + 2 * every + late)
    return timedelta(seconds=3600 + 60 + 3 * every + late)


def duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _retention(days: int | None) -> str:
    return "INF" if days is None else f"{days}d"


def _retention_hours(days: int | None) -> int:
    return 0 if days is None else days * 24


def _go_duration_hours(text: str) -> int | None:
    """``720h0m0s`` (SHOW RETENTION POLICIES) -> 720; ``0s`` (INF) -> 0."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if match is None:
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours + (minutes * 60 + seconds) // 3600


def _normalised(text: str) -> str:
    return re.sub(r'[\s"]', "", text)


@dataclass(slots=True)
class SchemaReport:
    """What :func:`ensure_schema` changed (empty on an idempotent re-open)."""

    changes: list[str]


async def ensure_schema(http: InfluxHttp, settings: InfluxStoreSettings) -> SchemaReport:
    report = SchemaReport([])
    if settings.setup is InfluxSetup.EXISTING:
        await http.query_ok([f"SHOW MEASUREMENTS ON {ident(settings.database)} LIMIT 1"], operation="open")
        return report
    db = ident(settings.database)
    [databases] = await http.query_ok(["SHOW DATABASES"], operation="open")
    names = {row[0] for series in databases.series for row in series.get("values", [])}
    if settings.database not in names:
        await _run(http, [f"CREATE DATABASE {db}"], "create the database (or create it yourself)")
        report.changes.append(f"created database {settings.database}")
    wanted = {
        RP_OF[Resolution.RAW]: settings.raw_retention_days,
        RP_OF[Resolution.MINUTE]: settings.rollup_1m_retention_days,
        RP_OF[Resolution.HOUR]: settings.rollup_1h_retention_days,
    }
    [policies] = await http.query_ok([f"SHOW RETENTION POLICIES ON {db}"], operation="open")
    existing: dict[str, tuple[int | None, bool]] = {}
    for series in policies.series:
        columns = series["columns"]
        for row in series.get("values", []):
            record = dict(zip(columns, row, strict=True))
            existing[record["name"]] = (_go_duration_hours(str(record["duration"])), bool(record["default"]))
    statements = []
    for name, days in wanted.items():
        default = " DEFAULT" if name == RAW_RP else ""
        if name not in existing:
            statements.append(
                f"CREATE RETENTION POLICY {ident(name)} ON {db} DURATION {_retention(days)} REPLICATION 1{default}"
            )
        elif existing[name][0] != _retention_hours(days) or (name == RAW_RP and not existing[name][1]):
            statements.append(f"ALTER RETENTION POLICY {ident(name)} ON {db} DURATION {_retention(days)}{default}")
    if statements:
        await _run(http, statements, "create or alter the retention policies")
        report.changes += statements
    if settings.rollups is InfluxRollups.CONTINUOUS_QUERIES:
        report.changes += await _ensure_continuous_queries(http, settings)
    if report.changes:
        log.info("InfluxDB %s schema: %s", settings.database, "; ".join(report.changes))
    return report


async def _ensure_continuous_queries(http: InfluxHttp, settings: InfluxStoreSettings) -> list[str]:
    [shown] = await http.query_ok(["SHOW CONTINUOUS QUERIES"], operation="open")
    existing: dict[str, str] = {
        name: query
        for series in shown.series
        if series.get("name") == settings.database
        for name, query in series.get("values", [])
    }
    statements = []
    for cq in continuous_queries(settings):
        current = existing.get(cq.name)
        if current is not None and _normalised(current) == _normalised(cq.text):
            continue
        if current is not None:
            statements.append(f"DROP CONTINUOUS QUERY {ident(cq.name)} ON {ident(settings.database)}")
        statements.append(cq.text)
    if statements:
        await _run(http, statements, "create the continuous queries")
    return [s.split(" BEGIN ")[0] for s in statements]


async def _run(http: InfluxHttp, statements: list[str], what: str) -> None:
    results = await http.query(statements, operation="open")
    for statement, result in zip(statements, results, strict=True):
        if result.error is None:
            continue
        if "authoriz" in result.error or "permission" in result.error or "privilege" in result.error:
            raise InfluxUnusableError(
                "open", f"{http.where()}: not allowed to {what}: {result.error}; an admin must run: {statement}"
            )
        raise InfluxUnusableError("open", f"{http.where()}: could not {what}: {result.error} (in {statement[:200]!r})")
