"""InfluxQL pieces the dashboards share, over the schema in :mod:`misto.cloud.storage.points` and
:mod:`misto.cloud.storage.measurements`, with Grafana's macros: ``$timeFilter`` (the dashboard's
time range), ``$__interval`` (the panel's window) and ``$name`` template variables, matched as
``=~ /^$name$/`` as Grafana's InfluxDB datasource expects for multi-value variables.

Reading a rollup: Grafana cannot pick a retention policy by the time range, so each panel names
its source. :func:`rollup` reads ``"<rp>"."<measurement>"`` with the rollup's field names
(``mean_pm25``...); see docs/dashboards.md for which panels read which.
"""

from __future__ import annotations

from misto.cloud.storage.base import Resolution
from misto.cloud.storage.influx_schema import AGGREGATES, RP_OF

MINUTELY = RP_OF[Resolution.MINUTE]
HOURLY = RP_OF[Resolution.HOUR]


def rollup_field(aggregate: str, metric: str) -> str:
    """A rollup's field: ``mean_pm25``... as :func:`misto.cloud.storage.influx_schema.rollup_select` names them."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"rollups keep {', '.join(AGGREGATES)}, not {aggregate!r}")
    return f"{aggregate}_{metric}"


TIME = "$timeFilter"
BY_TIME = "time($__interval)"


def ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tag_is(tag: str, variable: str) -> str:
    """``"tag" =~ /^$variable$/``: one value, several, or All (``.*``)."""
    return f"{ident(tag)} =~ /^${variable}$/"


def where(*conditions: str) -> str:
    return "WHERE " + " AND ".join([*conditions, TIME])


def raw(measurement: str) -> str:
    """A measurement in the database's default retention policy (the raw readings)."""
    return ident(measurement)


def rollup(measurement: str, *, hourly: bool = False) -> str:
    return f"{ident(HOURLY if hourly else MINUTELY)}.{ident(measurement)}"


def mean_of(metric: str) -> str:
    """The rollup field that holds a window's mean of ``metric``."""
    return ident(rollup_field("mean", metric))


def last_of(metric: str) -> str:
    return ident(rollup_field("last", metric))


def max_of(metric: str) -> str:
    return ident(rollup_field("max", metric))
