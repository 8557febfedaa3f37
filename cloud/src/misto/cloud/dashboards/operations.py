"""Dashboards about the system rather than the city: gateways and devices (``gateway_status``,
``gateway_health``, ``device_health``) and the ingesters (``misto_ingest``). Counters in these
measurements are cumulative since a process started, so rates use ``non_negative_derivative``
(a restart's drop to zero does not show as a negative rate).

The ingest dashboard has its SQL twin over the SQLite store's ``ingest_stats`` table (the same
snapshots, one row per instance and time; :mod:`misto.cloud.dashboards.sqlite_sql`). The gateways
and devices dashboard has none: the SQLite store keeps each gateway's latest status and health
only (table ``gateways``), not their history (docs/dashboards.md)."""

# ruff: noqa: S608 - InfluxQL text for Grafana, built from constants (no input reaches it)

from __future__ import annotations

from misto.cloud.dashboards import sqlite_sql as sql
from misto.cloud.dashboards.influxql import BY_TIME, ident, tag_is, where
from misto.cloud.dashboards.model import Dashboard, Override, Panel, PanelType, Query, ResultFormat, Threshold, Variable
from misto.cloud.storage.measurements import DEVICE_HEALTH, GATEWAY_HEALTH, GATEWAY_STATUS, INGEST

TS, STAT, TABLE, TIMELINE = PanelType.TIMESERIES, PanelType.STAT, PanelType.TABLE, PanelType.STATE_TIMELINE
GW = tag_is("gateway", "gateway")
DEV = tag_is("device", "device")
ONLINE = (("0", "offline", "red"), ("1", "online", "green"))
BAD_IF_ANY = (Threshold(None, "green"), Threshold(1.0, "red"))


def _per_gateway(field: str, title: str, unit: str, *, agg: str = "max", width: int = 12) -> Panel:
    q = (
        f"SELECT {agg}({ident(field)}) FROM {ident(GATEWAY_HEALTH)} {where(GW)} "
        f'GROUP BY {BY_TIME}, "gateway" fill(none)'
    )
    return Panel(title=title, type=TS, unit=unit, width=width, queries=(Query(q, alias="$tag_gateway"),))


def _rate(measurement: str, field: str, tag: str, condition: str) -> str:
    """Per-second rate of a cumulative counter, per ``tag``."""
    return (
        f"SELECT non_negative_derivative(max({ident(field)}), 1s) FROM {ident(measurement)} {where(condition)} "
        f'GROUP BY {BY_TIME}, "{tag}" fill(none)'
    )


def health() -> Dashboard:
    online_now = (
        f'SELECT sum("online") AS "online", count("online") AS "reporting" FROM (SELECT last("online") AS "online" '
        f'FROM {ident(GATEWAY_STATUS)} {where(GW)} GROUP BY "gateway")'
    )
    timeline = (
        f'SELECT last("online") FROM {ident(GATEWAY_STATUS)} {where(GW)} GROUP BY {BY_TIME}, "gateway" fill(previous)'
    )
    available = (
        f'SELECT mean("available") AS "devices available" FROM {ident(DEVICE_HEALTH)} {where(GW, DEV)} '
        f"GROUP BY {BY_TIME} fill(none)"
    )
    unavailable_now = (  # devices minus available ones: 0 when all are up (a WHERE would give "no data")
        f'SELECT count("a") - sum("a") FROM (SELECT last("available") AS "a" FROM {ident(DEVICE_HEALTH)} '
        f'{where(GW, DEV)} GROUP BY "device")'
    )
    buffer = (
        f'SELECT max("buffer_depth") AS "depth", max("buffer_oldest_age_s") AS "oldest age" '
        f'FROM {ident(GATEWAY_HEALTH)} {where(GW)} GROUP BY {BY_TIME}, "gateway" fill(none)'
    )
    errors = (  # per gateway, from its own total: cheap at city scale (device_health has a row per device)
        f'SELECT non_negative_difference(max("errors_total")) FROM {ident(GATEWAY_HEALTH)} {where(GW)} '
        f'GROUP BY {BY_TIME}, "gateway" fill(none)'
    )
    latency = (
        f'SELECT mean("last_latency_ms") AS "mean", max("last_latency_ms") AS "max" FROM {ident(DEVICE_HEALTH)} '
        f"{where(GW, DEV)} GROUP BY {BY_TIME} fill(none)"
    )
    devices = (
        f'SELECT last("available") AS "available", last("polls") AS "polls", last("failures") AS "failures", '
        f'last("last_latency_ms") AS "latency ms", last("errors_total") AS "errors" FROM {ident(DEVICE_HEALTH)} '
        f'{where(GW, DEV)} GROUP BY "gateway", "device"'
    )
    return Dashboard(
        uid="misto-health",
        title="Misto · Gateways and devices",
        description="Gateway status (online/offline), store-and-forward buffers, uplinks, agents' resources, "
        "device availability, poll errors and latency, from the gateways' health and status messages.",
        tags=("operations",),
        time_from="now-6h",
        refresh="30s",
        variables=(
            Variable(
                name="gateway",
                label="Gateway",
                query=f'SHOW TAG VALUES FROM {ident(GATEWAY_HEALTH)} WITH KEY = "gateway"',
            ),
            Variable(
                name="device",
                label="Device",
                query=f'SHOW TAG VALUES FROM {ident(DEVICE_HEALTH)} WITH KEY = "device" WHERE {GW}',
            ),
        ),
        panels=(
            Panel(
                title="Gateways online",
                type=STAT,
                width=6,
                height=5,
                unit="short",
                queries=(Query(online_now, format=ResultFormat.TABLE),),
                description="Of the selected gateways with a status in the range: how many are online now.",
            ),
            Panel(
                title="Devices unavailable now",
                type=STAT,
                width=6,
                height=5,
                unit="short",
                thresholds=BAD_IF_ANY,
                queries=(Query(unavailable_now, format=ResultFormat.TABLE),),
                description="Selected devices whose last health entry says unavailable.",
            ),
            Panel(
                title="Device availability",
                type=TS,
                width=12,
                height=5,
                unit="percentunit",
                maximum=1.0,
                queries=(Query(available, alias="$col"),),
                description="Share of the selected devices' health entries that say available.",
            ),
            Panel(
                title="Gateway status",
                type=TIMELINE,
                width=24,
                queries=(Query(timeline, alias="$tag_gateway"),),
                mappings=ONLINE,
                description="Online (retained status) or offline (last will), per gateway.",
            ),
            Panel(
                title="Store-and-forward buffer",
                type=TS,
                width=12,
                unit="short",
                queries=(Query(buffer, alias="$tag_gateway $col"),),
                overrides=(Override(".* oldest age$", unit="s", right_axis=True),),
                description="Messages waiting in each gateway's buffer, and the age of the oldest (right axis).",
            ),
            _per_gateway("link_connected", "Uplink connected", "short", agg="min"),
            Panel(
                title="Errors per window",
                type=TS,
                width=12,
                unit="short",
                stack=True,
                queries=(Query(errors, alias="$tag_gateway"),),
                description="New errors per gateway (failed polls by kind, uplink connection failures), from "
                "the gateway's cumulative total; the Devices table has each device's counters.",
            ),
            Panel(
                title="Poll latency",
                type=TS,
                width=12,
                unit="ms",
                queries=(Query(latency, alias="$col"),),
                description="The latest poll's latency reported by each selected device: mean and worst.",
            ),
            _per_gateway("rss_bytes", "Agent memory (RSS)", "bytes"),
            Panel(
                title="Agent CPU",
                type=TS,
                width=12,
                unit="percentunit",
                queries=(Query(_rate(GATEWAY_HEALTH, "cpu_s", "gateway", GW), alias="$tag_gateway"),),
                description="CPU seconds per second of each agent process.",
            ),
            Panel(
                title="Devices", type=TABLE, width=24, height=10, queries=(Query(devices, format=ResultFormat.TABLE),)
            ),
        ),
    )


def ingest() -> Dashboard:
    inst = tag_is("instance", "instance")

    def rate(field: str, title: str, *, width: int = 12) -> Panel:
        return Panel(
            title=title,
            type=TS,
            unit="ops",
            width=width,
            queries=(
                Query(_rate(INGEST, field, "instance", inst), alias="$tag_instance", sql=sql.ingest_rate(field, field)),
            ),
        )

    def gauge(field: str, title: str, unit: str, agg: str = "max") -> Panel:
        q = f'SELECT {agg}({ident(field)}) FROM {ident(INGEST)} {where(inst)} GROUP BY {BY_TIME}, "instance" fill(none)'
        sql_text = sql.ingest_gauge(field, sql.SQL_AGG[agg], field)
        return Panel(title=title, type=TS, unit=unit, width=8, queries=(Query(q, alias="$tag_instance", sql=sql_text),))

    total = (
        f'SELECT sum("r") FROM (SELECT non_negative_derivative(max("readings_written"), 1s) AS "r" '
        f'FROM {ident(INGEST)} {where(inst)} GROUP BY {BY_TIME}, "instance") GROUP BY {BY_TIME}'
    )
    total_sql = sql.ingest_total("readings_written", "readings written /s")
    return Dashboard(
        uid="misto-ingest",
        title="Misto · Ingest",
        description="The ingesters' own counters (measurement misto_ingest): throughput, rejects, duplicates, "
        "store errors, queue depth, write latency and consumer lag.",
        tags=("operations",),
        time_from="now-6h",
        refresh="30s",
        variables=(
            Variable(
                name="instance",
                label="Ingester",
                query=f'SHOW TAG VALUES FROM {ident(INGEST)} WITH KEY = "instance"',
                sql="SELECT DISTINCT instance FROM ingest_stats ORDER BY 1",
                sql_all="SELECT instance FROM ingest_stats",
            ),
        ),
        panels=(
            Panel(
                title="Readings written /s (all selected)",
                type=STAT,
                width=6,
                height=5,
                unit="ops",
                queries=(Query(total, sql=total_sql),),
            ),
            Panel(
                title="Readings written /s",
                type=TS,
                width=18,
                height=5,
                unit="ops",
                queries=(Query(total, alias="all", sql=total_sql),),
            ),
            rate("messages_in", "Messages in /s"),
            rate("readings_in", "Readings in /s"),
            rate("rejected", "Rejected (dead-lettered) /s", width=8),
            rate("duplicates", "Duplicates dropped /s", width=8),
            rate("store_errors", "Store errors /s", width=8),
            gauge("queue_depth", "Queue depth", "short"),
            gauge("write_p99_ms", "Write latency p99", "ms"),
            gauge("lag_s", "Consumer lag", "s"),
            gauge("batch_mean_readings", "Mean readings per batch", "short", agg="mean"),
        ),
    )
