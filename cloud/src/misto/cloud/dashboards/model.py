"""A small typed model of Grafana dashboards (schema version 39, Grafana 10 and 11) and its JSON.

Only what Misto's dashboards use: time-series, stat, bar-gauge, state-timeline and table panels
with raw InfluxQL targets, and query variables. Panels are laid out left to right, top to bottom
on Grafana's 24-column grid. Every panel and target names the provisioned datasource by uid, so a
dashboard works wherever a datasource with that uid exists (provisioned or pushed).

Two flavours of one definition (:class:`Flavour`): InfluxDB (InfluxQL, datasource
``misto-influxdb``) and the embedded SQLite store read by the frser-sqlite-datasource plugin
(SQL, datasource ``misto-sqlite``). A query carries its SQL beside its InfluxQL; a dashboard whose
every query and variable has SQL renders in the SQLite flavour too (:func:`has_sqlite`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DATASOURCE_UID = "misto-influxdb"
DATASOURCE_TYPE = "influxdb"
SQLITE_DATASOURCE_UID = "misto-sqlite"
SQLITE_DATASOURCE_TYPE = "frser-sqlite-datasource"
SCHEMA_VERSION = 39
GRID_COLUMNS = 24

Json = dict[str, Any]


class Flavour(StrEnum):
    """Which store a rendered dashboard reads: the SQLite one has uid ``<uid>-sqlite``."""

    INFLUXDB = "influxdb"
    SQLITE = "sqlite"


def datasource(flavour: Flavour = Flavour.INFLUXDB) -> Json:
    if flavour is Flavour.SQLITE:
        return {"type": SQLITE_DATASOURCE_TYPE, "uid": SQLITE_DATASOURCE_UID}
    return {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


class PanelType(StrEnum):
    TIMESERIES = "timeseries"
    STAT = "stat"
    BARGAUGE = "bargauge"
    STATE_TIMELINE = "state-timeline"
    TABLE = "table"


class ResultFormat(StrEnum):
    TIME_SERIES = "time_series"
    TABLE = "table"


@dataclass(frozen=True, slots=True)
class Query:
    """One raw InfluxQL target. ``alias`` uses Grafana's patterns (``$tag_device``, ``$col``).

    ``sql``: the same panel's query over the SQLite store, for the frser-sqlite-datasource plugin
    (:mod:`misto.cloud.dashboards.sqlite_sql`); its column ``time`` (Unix seconds) is the time
    column and the other columns are named as the series should be (no alias)."""

    influxql: str
    alias: str = ""
    format: ResultFormat = ResultFormat.TIME_SERIES
    sql: str = ""


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float | None  # None: the base step
    color: str


GREEN_ONLY = (Threshold(None, "green"),)


@dataclass(frozen=True, slots=True)
class Override:
    """Field settings for the series whose display name matches ``pattern`` (a regex)."""

    pattern: str
    unit: str = ""
    right_axis: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel:
    """``min_interval`` is Grafana's panel ``interval``: the smallest ``$__interval`` it will use
    (``1m`` on a 1-minute rollup, so no window is narrower than the data)."""

    title: str
    type: PanelType
    queries: tuple[Query, ...]
    description: str = ""
    unit: str = ""
    width: int = 12
    height: int = 8
    min_interval: str = ""
    decimals: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    thresholds: tuple[Threshold, ...] = GREEN_ONLY
    stack: bool = False
    mappings: tuple[tuple[str, str, str], ...] = ()  # (value, text, color)
    overrides: tuple[Override, ...] = ()
    time_from: str = ""  # Grafana's "relative time": this panel shows the last e.g. 1h whatever the range


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable:
    """A query variable; ``all_value`` ``.*`` keeps "All" a short regex however many values exist.
    With ``options`` it is a custom variable instead: one of those values, the first by default."""

    name: str
    label: str
    query: str = ""
    multi: bool = True
    include_all: bool = True
    all_value: str = ".*"
    options: tuple[tuple[str, str], ...] = ()  # (value, text)
    sql: str = ""  # the query over the SQLite store (a query variable's, for the SQLite flavour)
    #: "All" in the SQLite flavour: SQL that Grafana inserts unformatted (a custom all value is
    #: never quoted), e.g. ``SELECT device FROM series``, so ``IN (${device:sqlstring})`` means
    #: every device without a list of every device's name.
    sql_all: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    tags: tuple[str, ...] = ()
    time_from: str = "now-24h"
    refresh: str = "1m"
    file_name: str = field(default="")

    @property
    def file(self) -> str:
        return self.file_name or f"{self.uid.removeprefix('misto-')}.json"


def has_sqlite(board: Dashboard) -> bool:
    """Whether every query and query variable of ``board`` has its SQL (it renders as SQLite)."""
    return all(q.sql for p in board.panels for q in p.queries) and all(
        v.options or (v.sql and (v.sql_all or not v.include_all)) for v in board.variables
    )


def _sqlite_target(query: Query, ref: str) -> Json:
    """A frser-sqlite-datasource target: the plugin's frontend substitutes Grafana's variables
    (``$__from``, ``$__to``, ``$__interval_ms``, ``$resolution``) in ``rawQueryText`` into
    ``queryText``; ``timeColumns`` names the columns it reads as Unix seconds."""
    return {
        "datasource": datasource(Flavour.SQLITE),
        "refId": ref,
        "queryType": "time series" if query.format is ResultFormat.TIME_SERIES else "table",
        "rawQueryText": query.sql,
        "queryText": query.sql,
        "timeColumns": ["time"],
    }


def _target(query: Query, ref: str, flavour: Flavour = Flavour.INFLUXDB) -> Json:
    if flavour is Flavour.SQLITE:
        return _sqlite_target(query, ref)
    target: Json = {
        "datasource": datasource(),
        "refId": ref,
        "rawQuery": True,
        "query": query.influxql,
        "resultFormat": query.format.value,
    }
    if query.alias:
        target["alias"] = query.alias
    return target


def _field_config(panel: Panel) -> Json:
    defaults: Json = {
        "color": {"mode": "palette-classic" if panel.type is PanelType.TIMESERIES else "thresholds"},
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": t.color, "value": t.value} for t in panel.thresholds],
        },
    }
    if panel.unit:
        defaults["unit"] = panel.unit
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.minimum is not None:
        defaults["min"] = panel.minimum
    if panel.maximum is not None:
        defaults["max"] = panel.maximum
    if panel.type is PanelType.TIMESERIES:
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10 if panel.stack else 0,
            "spanNulls": False,
            "showPoints": "never",
            "stacking": {"mode": "normal" if panel.stack else "none", "group": "A"},
        }
    if panel.mappings:
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {value: {"text": text, "color": color} for value, text, color in panel.mappings},
            }
        ]
    return {"defaults": defaults, "overrides": [_override(o) for o in panel.overrides]}


def _override(override: Override) -> Json:
    properties: list[Json] = []
    if override.unit:
        properties.append({"id": "unit", "value": override.unit})
    if override.right_axis:
        properties.append({"id": "custom.axisPlacement", "value": "right"})
    return {"matcher": {"id": "byRegexp", "options": override.pattern}, "properties": properties}


def _options(panel: Panel) -> Json:
    legend = {"displayMode": "list", "placement": "bottom", "showLegend": True}
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    match panel.type:
        case PanelType.TIMESERIES:
            return {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}
        case PanelType.STAT:
            return {"reduceOptions": reduce, "colorMode": "value", "graphMode": "area", "textMode": "auto"}
        case PanelType.BARGAUGE:
            return {"reduceOptions": reduce, "orientation": "horizontal", "displayMode": "gradient"}
        case PanelType.STATE_TIMELINE:
            return {"legend": legend, "showValue": "never", "mergeValues": True, "rowHeight": 0.9}
        case PanelType.TABLE:
            return {"showHeader": True, "cellHeight": "sm"}


def _variable(variable: Variable, flavour: Flavour = Flavour.INFLUXDB) -> Json:
    if variable.options:
        value, text = variable.options[0]
        return {
            "type": "custom",
            "name": variable.name,
            "label": variable.label,
            "query": ",".join(v for v, _ in variable.options),
            "multi": False,
            "includeAll": False,
            "current": {"selected": True, "text": text, "value": value},
            "options": [{"selected": i == 0, "text": t, "value": v} for i, (v, t) in enumerate(variable.options)],
            "hide": 0,
        }
    sqlite = flavour is Flavour.SQLITE
    query = variable.sql if sqlite else variable.query
    all_value = variable.sql_all if sqlite else variable.all_value
    return {
        "type": "query",
        "name": variable.name,
        "label": variable.label,
        "datasource": datasource(flavour),
        "query": query,
        "definition": query,
        "multi": variable.multi,
        "includeAll": variable.include_all,
        "allValue": all_value if variable.include_all else None,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if variable.include_all else {},
        "refresh": 2,  # on time range change
        "regex": "",
        "sort": 1,
        "hide": 0,
        "options": [],
    }


def render(board: Dashboard, flavour: Flavour = Flavour.INFLUXDB) -> Json:
    """The dashboard's JSON model (``id`` null: Grafana assigns it; the uid is what stays)."""
    if flavour is Flavour.SQLITE and not has_sqlite(board):
        raise ValueError(f"{board.uid}: not every query has its SQL; it has no SQLite flavour")
    sqlite = flavour is Flavour.SQLITE
    panels: list[Json] = []
    x = y = row_height = 0
    refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for n, panel in enumerate(board.panels, start=1):
        if x + panel.width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        item: Json = {
            "id": n,
            "type": panel.type.value,
            "title": panel.title,
            "description": panel.description,
            "datasource": datasource(flavour),
            "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
            "targets": [_target(q, refs[i], flavour) for i, q in enumerate(panel.queries)],
            "fieldConfig": _field_config(panel),
            "options": _options(panel),
        }
        if panel.min_interval:
            item["interval"] = panel.min_interval
        if panel.time_from:
            item["timeFrom"] = panel.time_from
        panels.append(item)
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "id": None,
        "uid": f"{board.uid}-sqlite" if sqlite else board.uid,
        "title": f"{board.title} (SQLite)" if sqlite else board.title,
        "description": board.description,
        "tags": ["misto", *board.tags, *(["sqlite"] if sqlite else [])],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": board.time_from, "to": "now"},
        "refresh": board.refresh,
        "links": [
            {"type": "dashboards", "tags": ["misto"], "asDropdown": True, "title": "Misto", "icon": "external link"}
        ],
        "annotations": {"list": []},
        "templating": {"list": [_variable(v, flavour) for v in board.variables]},
        "panels": panels,
    }
