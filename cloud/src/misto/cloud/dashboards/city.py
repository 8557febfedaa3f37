"""The city overview: the whole city on one screen for the operations centre. No panel reads the
raw readings, so it stays fast with thousands of devices and days on screen (docs/dashboards.md:
the retention-policy choice):

- the "now" stats read the last hour (Grafana's per-panel relative time) of the 1-minute rollups
  (``"rollup_1m"."<kind>"``, fields ``mean_<metric>`` / ``last_<metric>``), whatever the range;
- the trends read the rollup the ``$resolution`` variable names: ``rollup_1h`` by default (a day is
  24 points per device, a year 8,760), ``rollup_1m`` for a close look at a few hours;
- gateways online read the small ``gateway_status`` measurement over the range.

Each query has its SQL twin for the SQLite store (:mod:`misto.cloud.dashboards.sqlite_sql`): the
same rollup (table ``rollup_1m``, or ``$resolution`` naming ``rollup_1h`` / ``rollup_1m``), the
same aggregate (the mean over devices of each window's mean; the sum over devices of their last
value), and the ``gateways`` table (each gateway's latest status) for gateways online.
"""

# ruff: noqa: S608 - InfluxQL text for Grafana, built from constants (no input reaches it)

from __future__ import annotations

from misto.cloud.dashboards import sqlite_sql as sql
from misto.cloud.dashboards.influxql import BY_TIME, HOURLY, MINUTELY, TIME, ident, last_of, max_of, mean_of, rollup
from misto.cloud.dashboards.model import (
    GREEN_ONLY,
    Dashboard,
    Panel,
    PanelType,
    Query,
    ResultFormat,
    Threshold,
    Variable,
)

ROLLUP_INTERVAL = "1m"
NOW = "1h"  # the stats' relative time
RESOLUTION = Variable(
    name="resolution",
    label="Resolution",
    options=((HOURLY, "1 hour (rollup_1h)"), (MINUTELY, "1 minute (rollup_1m)")),
)


def chosen(measurement: str) -> str:
    """``"$resolution"."<measurement>"``: the rollup the dashboard's variable picks."""
    return f'"${RESOLUTION.name}".{ident(measurement)}'


SQL_MINUTELY = "rollup_1m"  # the SQLite store's tables, named as InfluxDB's retention policies
SQL_CHOSEN = f"${RESOLUTION.name}"
#: The devices whose ``occupancy`` is a parking controller's, not a traffic loop's.
PARKING = sql.of_kind("availableSpotNumber")


def _trend(kind: str, metrics: tuple[tuple[str, str], ...]) -> str:
    fields = ", ".join(f'mean({mean_of(metric)}) AS "{label}"' for metric, label in metrics)
    return f"SELECT {fields} FROM {chosen(kind)} WHERE {TIME} GROUP BY {BY_TIME} fill(none)"


def _sql_trend(metrics: tuple[tuple[str, str], ...], *conditions: str) -> str:
    names = tuple(metric for metric, _ in metrics)
    columns = tuple((sql.mean(metric), label) for metric, label in metrics)
    return sql.trend(SQL_CHOSEN, columns, sql.metrics_in(*names), *conditions)


def _sql_now_mean(metric: str, label: str) -> str:
    return sql.trend(SQL_MINUTELY, ((sql.mean(metric), label),), sql.metrics_in(metric))


def _stat(
    title: str,
    query: Query,
    unit: str,
    description: str,
    thresholds: tuple[Threshold, ...] = GREEN_ONLY,
    *,
    time_from: str = NOW,
) -> Panel:
    return Panel(
        title=title,
        type=PanelType.STAT,
        unit=unit,
        width=4,
        height=5,
        min_interval=ROLLUP_INTERVAL,
        queries=(query,),
        description=description,
        thresholds=thresholds,
        time_from=time_from,
    )


def _series(influxql: str, sql_text: str) -> Query:
    return Query(influxql, sql=sql_text)


def _table(influxql: str, sql_text: str) -> Query:
    return Query(influxql, format=ResultFormat.TABLE, sql=sql_text)


def _chart(title: str, query: str, sql_text: str, unit: str, description: str, *, width: int = 12) -> Panel:
    return Panel(
        title=title,
        type=PanelType.TIMESERIES,
        unit=unit,
        width=width,
        min_interval=ROLLUP_INTERVAL,
        queries=(Query(query, alias="$col", sql=sql_text),),
        description=description,
    )


def overview() -> Dashboard:
    pm25 = f"SELECT mean({mean_of('pm25')}) FROM {rollup('air')} WHERE {TIME} GROUP BY {BY_TIME} fill(none)"
    laeq = f"SELECT mean({mean_of('LAeq')}) FROM {rollup('noise')} WHERE {TIME} GROUP BY {BY_TIME} fill(none)"
    free = (
        f'SELECT sum("free") FROM (SELECT last({last_of("availableSpotNumber")}) AS "free" '
        f'FROM {rollup("parking")} WHERE {TIME} GROUP BY "device")'
    )
    full = (  # floor(level / 0.8) is 1 from 80 % to 100 % full, else 0: a count that is 0, not "no data"
        f'SELECT sum("full") FROM (SELECT floor(last({last_of("fillingLevel")}) / 0.8) AS "full" '
        f'FROM {rollup("waste")} WHERE {TIME} GROUP BY "device")'
    )
    online = (
        'SELECT sum("online") FROM (SELECT last("online") AS "online" FROM "gateway_status" '
        f'WHERE {TIME} GROUP BY "gateway")'
    )
    flow = f"SELECT mean({mean_of('intensity')}) FROM {rollup('traffic')} WHERE {TIME} GROUP BY {BY_TIME} fill(none)"
    free_sql = (
        'SELECT sum(v) AS "free" FROM ('
        + sql.last_per_series(SQL_MINUTELY, "r.last", sql.metrics_in("availableSpotNumber"))
        + ")"
    )
    full_sql = (  # 1 for a bin whose last level is 0.8 or more, else 0: a count that is 0, not "no data"
        'SELECT sum(v) AS "full" FROM ('
        + sql.last_per_series(SQL_MINUTELY, "r.last >= 0.8", sql.metrics_in("fillingLevel"))
        + ")"
    )
    online_sql = (  # the gateways table keeps each gateway's latest status
        "SELECT count(*) AS \"online\" FROM gateways WHERE state = 'online' "
        f"AND status_at >= {sql.FROM} AND status_at <= {sql.TO}"
    )
    noise_sql = sql.trend(
        SQL_CHOSEN,
        ((sql.mean("LAeq"), "LAeq mean"), (sql.highest("LAmax"), "LAmax highest")),
        sql.metrics_in("LAeq", "LAmax"),
    )
    return Dashboard(
        uid="misto-city-overview",
        title="Misto · City overview",
        description="The city at a glance, from the 1-minute rollups: air, noise, traffic, parking, waste and "
        "the gateways. Open a kind's dashboard for single devices.",
        tags=("overview",),
        time_from="now-24h",
        variables=(RESOLUTION,),
        panels=(
            _stat(
                "PM2.5, city mean",
                _series(pm25, _sql_now_mean("pm25", "PM2.5")),
                "conμgm3",
                "Mean of the stations' 1-minute means; the last minute of the last hour shown.",
                (Threshold(None, "green"), Threshold(25.0, "yellow"), Threshold(50.0, "red")),
            ),
            _stat(
                "Noise LAeq, city mean",
                _series(laeq, _sql_now_mean("LAeq", "LAeq")),
                "dB",
                "Mean of the meters' 1-minute LAeq means; the last minute shown.",
                (Threshold(None, "green"), Threshold(60.0, "yellow"), Threshold(70.0, "red")),
            ),
            _stat(
                "Traffic flow per counter",
                _series(flow, _sql_now_mean("intensity", "flow")),
                "vehicles/h",
                "Mean flow of the loop counters (1-minute rollup); the last minute shown.",
            ),
            _stat(
                "Free parking bays",
                _table(free, free_sql),
                "short",
                "Sum over controllers of their last free-bay count in the last hour.",
            ),
            _stat(
                "Bins over 80 % full",
                _table(full, full_sql),
                "short",
                "Bins whose last filling level in the last hour is 0.8 or more.",
                (Threshold(None, "green"), Threshold(10.0, "orange"), Threshold(50.0, "red")),
            ),
            _stat(
                "Gateways online",
                _table(online, online_sql),
                "short",
                "Gateways whose last status in the range is online.",
                time_from="",
            ),
            _chart(
                "Air quality, city mean",
                _trend("air", (("pm25", "PM2.5"), ("pm10", "PM10"), ("no2", "NO2"))),
                _sql_trend((("pm25", "PM2.5"), ("pm10", "PM10"), ("no2", "NO2"))),
                "conμgm3",
                "Mean over all stations of their 1-minute means.",
            ),
            _chart(
                "Noise, city mean and loudest",
                f'SELECT mean({mean_of("LAeq")}) AS "LAeq mean", max({max_of("LAmax")}) AS "LAmax highest" '
                f"FROM {chosen('noise')} WHERE {TIME} GROUP BY {BY_TIME} fill(none)",
                noise_sql,
                "dB",
                "Mean LAeq over all meters, and the highest LAmax any meter reported.",
            ),
            _chart(
                "Traffic, city mean",
                _trend("traffic", (("intensity", "flow /h"), ("averageVehicleSpeed", "km/h"))),
                _sql_trend((("intensity", "flow /h"), ("averageVehicleSpeed", "km/h"))),
                "short",
                "Mean flow and speed over all loop counters.",
            ),
            _chart(
                "Parking and waste",
                _trend("parking", (("occupancy", "parking occupancy"),)),
                _sql_trend((("occupancy", "parking occupancy"),), PARKING),
                "percentunit",
                "Mean occupancy of the parking controllers.",
                width=6,
            ),
            _chart(
                "Waste filling level",
                _trend("waste", (("fillingLevel", "mean fill"),)),
                _sql_trend((("fillingLevel", "mean fill"),)),
                "percentunit",
                "Mean filling level of all bins.",
                width=6,
            ),
        ),
    )
