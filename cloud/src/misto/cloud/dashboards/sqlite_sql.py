"""SQL pieces the SQLite flavour of the dashboards shares, over the SQLite store's schema
(:mod:`misto.cloud.storage.sqlite_schema`): ``series(id, device, metric, gateway, unit)`` and the
rollup tables ``rollup_1m`` / ``rollup_1h(series_id, start, count, sum, min, max, first_ts,
last_ts, last)``, ``start`` in milliseconds since the epoch.

Grafana's frser-sqlite-datasource plugin has no ``$__timeFilter``; what it offers is Grafana's own
variables, substituted by Grafana before the query reaches the plugin: ``$__from`` and ``$__to``
(the panel's time range in epoch milliseconds, also substituted by the plugin's backend for
alerts) and ``$__interval_ms`` (the panel's window). The rollups keep milliseconds too, so the
time filter is a plain range on the primary key ``(series_id, start)``: ``r.start >= $__from AND
r.start < $__to``. The plugin reads a time column holding a number as Unix **seconds**, so each
query returns ``time`` as the window's start in whole seconds, ordered by time.

A panel's series are chosen by metric (``s.metric IN (...)``): the store keeps one series per
device and metric, with no measurement. The one metric two kinds share among the overview's
(``occupancy``: traffic loops and parking controllers) is narrowed by :func:`of_kind` to the
devices that also report a metric of that kind only.

The per-kind dashboards read the raw ``readings(series_id, ts, value)`` (``ts`` in ms) the same
way (:func:`raw_rows`), with the query variables written ``${name:sqlstring}`` (Grafana quotes
each chosen value) and "All" a subquery of every value (:func:`all_of`, inserted unquoted). The
ingest dashboard reads ``ingest_stats`` (:func:`ingest_rate`, :func:`ingest_gauge`).
"""

# ruff: noqa: S608 - SQL text for Grafana, built from constants (no input reaches it)

from __future__ import annotations

FROM = "$__from"
TO = "$__to"
INTERVAL_MS = "$__interval_ms"


def text(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A double-quoted SQL identifier (a column alias: the series' name in Grafana)."""
    return '"' + name.replace('"', '""') + '"'


def window(column: str = "r.start") -> str:
    """``time``: the start (Unix seconds) of the ``$__interval`` window holding ``column`` (ms)."""
    return f"{column} / {INTERVAL_MS} * {INTERVAL_MS} / 1000 AS time"


def in_range(column: str = "r.start") -> str:
    """``column`` (ms) within the panel's time range."""
    return f"{column} >= {FROM} AND {column} < {TO}"


def metrics_in(*metrics: str) -> str:
    if len(metrics) == 1:
        return f"s.metric = {text(metrics[0])}"
    return f"s.metric IN ({', '.join(text(m) for m in metrics)})"


def of_kind(marker: str) -> str:
    """The series' device also reports ``marker`` (a metric of one kind only, e.g.
    ``availableSpotNumber`` for parking)."""
    return f"s.device IN (SELECT device FROM series WHERE metric = {text(marker)})"


def rollup_rows(table: str, *conditions: str) -> str:
    """``FROM`` the rollup ``table`` (a table name or ``$resolution``) joined to its series, with
    ``conditions`` on the series and the time range on the rollup."""
    where = " AND ".join([*conditions, in_range()])
    return f"FROM series AS s JOIN {table} AS r ON r.series_id = s.id WHERE {where}"


def mean(metric: str) -> str:
    """The mean over the selected rows' windows of ``metric`` (each window's mean, then their mean:
    InfluxDB's ``mean(mean_<metric>)``)."""
    return f"avg(CASE WHEN s.metric = {text(metric)} THEN r.sum / r.count END)"


def highest(metric: str) -> str:
    return f"max(CASE WHEN s.metric = {text(metric)} THEN r.max END)"


def trend(table: str, columns: tuple[tuple[str, str], ...], *conditions: str) -> str:
    """Per ``$__interval`` window: each ``(expression, name)`` of ``columns`` over the rollup."""
    fields = ", ".join(f"{expression} AS {ident(name)}" for expression, name in columns)
    return f"SELECT {window()}, {fields} {rollup_rows(table, *conditions)} GROUP BY 1 ORDER BY 1"


def last_per_series(table: str, value: str, *conditions: str) -> str:
    """One row per series: ``value`` (an expression of ``r.last``...) from its newest window in
    the range (SQLite takes bare columns from the row ``max()`` picked)."""
    return f"SELECT {value} AS v, max(r.start) {rollup_rows(table, *conditions)} GROUP BY r.series_id"


# --- the raw readings and the template variables (the per-kind dashboards) -----------------------

#: InfluxQL's aggregates by their SQL names.
SQL_AGG = {"mean": "avg", "max": "max", "min": "min", "sum": "sum"}
#: The metrics more than one kind reports (the series of a kind are narrowed by its marker).
SHARED = frozenset({"temperature", "occupancy", "batteryLevel", "rssi"})


def chosen(column: str, variable: str) -> str:
    """``s.<column>`` among the values of the query variable ``variable``, quoted as SQL strings by
    Grafana (``${device:sqlstring}``: ``'a','b'``); "All" is the variable's :func:`all_of`."""
    return f"s.{column} IN (${{{variable}:sqlstring}})"


def all_of(column: str) -> str:
    """A variable's "All" over ``series``: every value of ``column`` (a subquery, not a list)."""
    return f"SELECT {column} FROM series"


def values_of(column: str, marker: str, *conditions: str) -> str:
    """A query variable's values: each ``column`` of the devices reporting ``marker``."""
    where = " AND ".join([f"s.metric = {text(marker)}", *conditions])
    return f"SELECT DISTINCT s.{column} FROM series AS s WHERE {where} ORDER BY 1"


def of_series(metric: str, marker: str) -> tuple[str, ...]:
    """The series of ``metric`` of the devices of one kind (known by ``marker``, a metric only that
    kind reports): ``metric`` alone when no other kind reports it."""
    return (metrics_in(metric),) if metric not in SHARED else (metrics_in(metric), of_kind(marker))


def raw_rows(*conditions: str) -> str:
    """``FROM`` the raw readings joined to their series, with ``conditions`` on the series and the
    time range on the readings' primary key ``(series_id, ts)``."""
    where = " AND ".join([*conditions, in_range("r.ts")])
    return f"FROM series AS s JOIN readings AS r ON r.series_id = s.id WHERE {where}"


def raw_trend(columns: tuple[tuple[str, str], ...], *conditions: str) -> str:
    """Per ``$__interval`` window: each ``(expression, name)`` of ``columns`` over the raw readings."""
    fields = ", ".join(f"{expression} AS {ident(name)}" for expression, name in columns)
    return f"SELECT {window('r.ts')}, {fields} {raw_rows(*conditions)} GROUP BY 1 ORDER BY 1"


def newest(value: str = "r.value") -> str:
    """The series ``s``'s newest reading in the range (``value`` of it), read backwards along the
    readings' primary key: one index seek per series, however long the range."""
    return (
        f"(SELECT {value} FROM readings AS r WHERE r.series_id = s.id AND {in_range('r.ts')} "
        "ORDER BY r.ts DESC LIMIT 1)"
    )


def per_device(expression: str, name: str, *conditions: str) -> str:
    """Per ``$__interval`` window and device (the plugin makes one series per device): ``expression``."""
    return (
        f"SELECT {window('r.ts')}, s.device AS device, {expression} AS {ident(name)} {raw_rows(*conditions)} "
        "GROUP BY 1, 2 ORDER BY 1"
    )


def latest(columns: tuple[tuple[str, str], ...], *conditions: str) -> str:
    """One row per device: the newest value in the range of each ``(metric, name)`` of ``columns``
    (devices with none of them in the range left out)."""
    metrics = tuple(metric for metric, _ in columns)
    fields = ", ".join(f"max(CASE WHEN metric = {text(m)} THEN v END) AS {ident(name)}" for m, name in columns)
    inner = (
        f"SELECT s.device AS device, s.gateway AS gateway, s.metric AS metric, {newest()} AS v "
        f"FROM series AS s WHERE {' AND '.join([metrics_in(*metrics), *conditions])}"
    )
    return (
        f"SELECT device, gateway, {fields} FROM ({inner}) WHERE v IS NOT NULL GROUP BY device, gateway ORDER BY device"
    )


# --- the ingesters' self-metrics (table ingest_stats) -------------------------------------------

INSTANCE = "i.instance IN (${instance:sqlstring})"


def ingest_rows(*conditions: str) -> str:
    where = " AND ".join([*conditions, in_range("i.at")])
    return f"FROM ingest_stats AS i WHERE {where}"


def ingest_rate(field: str, name: str) -> str:
    """Per window and instance: the per-second rate of the cumulative counter ``field``, from each
    window's highest value and the previous window's (InfluxDB's
    ``non_negative_derivative(max(field), 1s)``: a restart's drop gives no value, not a negative rate)."""
    windows = (
        f"SELECT i.at / {INTERVAL_MS} * {INTERVAL_MS} AS t, i.instance AS instance, max(i.{field}) AS m "
        f"{ingest_rows(INSTANCE)} GROUP BY 1, 2"
    )
    steps = (
        "SELECT t, instance, m - lag(m) OVER p AS dm, t - lag(t) OVER p AS dt FROM w "
        "WINDOW p AS (PARTITION BY instance ORDER BY t)"
    )
    return (
        f"WITH w AS ({windows}), d AS ({steps}) SELECT t / 1000 AS time, instance, "
        f"CASE WHEN dm >= 0 THEN dm * 1000.0 / dt END AS {ident(name)} FROM d WHERE dt IS NOT NULL ORDER BY 1"
    )


def ingest_total(field: str, name: str) -> str:
    """The sum over the selected instances of :func:`ingest_rate` per window."""
    return f"SELECT time, sum(rate) AS {ident(name)} FROM ({ingest_rate(field, 'rate')}) GROUP BY 1 ORDER BY 1"


def ingest_gauge(field: str, agg: str, name: str) -> str:
    return (
        f"SELECT {window('i.at')}, i.instance AS instance, {agg}(i.{field}) AS {ident(name)} "
        f"{ingest_rows(INSTANCE)} GROUP BY 1, 2 ORDER BY 1"
    )
