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
