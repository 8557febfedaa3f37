"""One dashboard per sensor kind (air quality, noise, traffic, parking, waste), reading the raw
measurements: they show single devices, so they filter by gateway and device first and default
to the last 6 hours. Long ranges over many devices belong to the city overview (rollups).

Each query has its SQL twin over the SQLite store's raw ``readings``
(:mod:`misto.cloud.dashboards.sqlite_sql`): the store has no measurement, so a kind's series are
its metrics', narrowed to the kind's devices (those reporting its :data:`MARKER`) for the metrics
several kinds report; the variables are the same, with "All" as a subquery of every value."""

# ruff: noqa: S608 - InfluxQL text for Grafana, built from constants (no input reaches it)

from __future__ import annotations

from misto.cloud.dashboards import sqlite_sql as sql
from misto.cloud.dashboards.influxql import BY_TIME, ident, raw, tag_is, where
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

TS, STAT, TABLE, BAR, TIMELINE = (
    PanelType.TIMESERIES,
    PanelType.STAT,
    PanelType.TABLE,
    PanelType.BARGAUGE,
    PanelType.STATE_TIMELINE,
)
DEVICE_ALIAS = "$tag_device"
#: A metric only the measurement's devices report: what a kind's devices are known by in the SQLite store.
MARKER = {
    "air": "pm25",
    "noise": "LAeq",
    "traffic": "intensity",
    "camera": "vehicleCount",
    "parking": "availableSpotNumber",
    "waste": "fillingLevel",
}


def variables(measurement: str, device_var: str = "device", device_label: str = "Device") -> tuple[Variable, ...]:
    """``gateway`` and ``device`` (chained: the devices of the chosen gateways) of a measurement."""
    m = ident(measurement)
    marker = MARKER[measurement]
    return (
        Variable(
            name="gateway",
            label="Gateway",
            query=f'SHOW TAG VALUES FROM {m} WITH KEY = "gateway"',
            sql=sql.values_of("gateway", marker),
            sql_all=sql.all_of("gateway"),
        ),
        Variable(
            name=device_var,
            label=device_label,
            query=f'SHOW TAG VALUES FROM {m} WITH KEY = "device" WHERE {tag_is("gateway", "gateway")}',
            sql=sql.values_of("device", marker, sql.chosen("gateway", "gateway")),
            sql_all=sql.all_of("device"),
        ),
    )


def selected(device_var: str = "device") -> tuple[str, str]:
    return tag_is("gateway", "gateway"), tag_is("device", device_var)


def sql_selected(measurement: str, metric: str, device_var: str = "device") -> tuple[str, ...]:
    """The SQL conditions for ``metric``'s series of the measurement's chosen gateways and devices."""
    return (
        *sql.of_series(metric, MARKER[measurement]),
        sql.chosen("gateway", "gateway"),
        sql.chosen("device", device_var),
    )


def by_device(
    measurement: str,
    metric: str,
    title: str,
    unit: str,
    *,
    agg: str = "mean",
    width: int = 12,
    maximum: float | None = None,
    thresholds: tuple[Threshold, ...] = GREEN_ONLY,
) -> Panel:
    q = (
        f"SELECT {agg}({ident(metric)}) FROM {raw(measurement)} {where(*selected())} "
        f'GROUP BY {BY_TIME}, "device" fill(none)'
    )
    sql_text = sql.per_device(f"{sql.SQL_AGG[agg]}(r.value)", metric, *sql_selected(measurement, metric))
    return Panel(
        title=title,
        type=TS,
        unit=unit,
        width=width,
        queries=(Query(q, alias=DEVICE_ALIAS, sql=sql_text),),
        description=f"{agg} of {metric} per window, one line per selected device.",
        maximum=maximum,
        thresholds=thresholds,
    )


def spread(measurement: str, metric: str, title: str, unit: str, *, width: int = 12) -> Panel:
    """Mean, min and max over the selected devices per window."""
    f = ident(metric)
    q = (
        f'SELECT mean({f}) AS "mean", min({f}) AS "min", max({f}) AS "max" FROM {raw(measurement)} '
        f"{where(*selected())} GROUP BY {BY_TIME} fill(none)"
    )
    sql_text = sql.raw_trend(
        (("avg(r.value)", "mean"), ("min(r.value)", "min"), ("max(r.value)", "max")),
        *sql_selected(measurement, metric),
    )
    return Panel(
        title=title,
        type=TS,
        unit=unit,
        width=width,
        queries=(Query(q, alias="$col", sql=sql_text),),
        description=f"{metric} over the selected devices: mean, lowest and highest per window.",
    )


def latest_table(measurement: str, columns: tuple[tuple[str, str], ...], title: str = "Latest per device") -> Panel:
    fields = ", ".join(f"last({ident(metric)}) AS {ident(label)}" for metric, label in columns)
    q = f'SELECT {fields} FROM {raw(measurement)} {where(*selected())} GROUP BY "device", "gateway"'
    chosen = (sql.chosen("gateway", "gateway"), sql.chosen("device", "device"))
    sql_text = sql.latest(columns, sql.of_kind(MARKER[measurement]), *chosen)
    return Panel(
        title=title,
        type=TABLE,
        width=24,
        height=9,
        queries=(Query(q, format=ResultFormat.TABLE, sql=sql_text),),
        description="The last value of each metric in the time range, one row per device.",
    )


def top(measurement: str, metric: str, title: str, unit: str, *, n: int = 10, bottom: bool = False) -> Panel:
    fn = "bottom" if bottom else "top"
    q = (
        f'SELECT {fn}("v", "device", {n}) FROM (SELECT mean({ident(metric)}) AS "v" FROM {raw(measurement)} '
        f'{where(*selected())} GROUP BY "device")'
    )
    sql_text = (
        f'SELECT s.device AS device, avg(r.value) AS "mean" {sql.raw_rows(*sql_selected(measurement, metric))} '
        f"GROUP BY s.id ORDER BY 2 {'ASC' if bottom else 'DESC'} LIMIT {n}"
    )
    return Panel(
        title=title,
        type=TABLE,
        unit=unit,
        queries=(Query(q, format=ResultFormat.TABLE, sql=sql_text),),
        description=f"The {n} devices with the {'lowest' if bottom else 'highest'} mean {metric} in the range.",
    )


def air() -> Dashboard:
    return Dashboard(
        uid="misto-air",
        title="Misto · Air quality",
        description="AQ-1 stations (measurement air): particulates, gases and weather per station.",
        tags=("air",),
        time_from="now-6h",
        variables=variables("air"),
        panels=(
            spread("air", "pm25", "PM2.5 over the selected stations", "conμgm3"),
            by_device("air", "pm25", "PM2.5 per station", "conμgm3"),
            by_device("air", "pm10", "PM10 per station", "conμgm3"),
            by_device("air", "no2", "NO₂ per station", "conμgm3"),
            by_device("air", "o3", "O₃ per station", "conμgm3", width=8),
            by_device("air", "co", "CO per station", "conmgm3", width=8),
            top("air", "pm25", "Highest mean PM2.5", "conμgm3"),
            by_device("air", "temperature", "Temperature", "celsius", width=8),
            by_device("air", "relativeHumidity", "Relative humidity", "percentunit", width=8, maximum=1.0),
            by_device("air", "atmosphericPressure", "Atmospheric pressure", "pressurehpa", width=8),
            latest_table(
                "air",
                (
                    ("pm25", "PM2.5"),
                    ("pm10", "PM10"),
                    ("no2", "NO2"),
                    ("o3", "O3"),
                    ("co", "CO"),
                    ("temperature", "°C"),
                ),
            ),
        ),
    )


def noise() -> Dashboard:
    loud = (Threshold(None, "green"), Threshold(55.0, "yellow"), Threshold(65.0, "orange"), Threshold(75.0, "red"))
    return Dashboard(
        uid="misto-noise",
        title="Misto · Noise",
        description="NM-1 noise meters (measurement noise): equivalent and maximum A-weighted levels.",
        tags=("noise",),
        time_from="now-6h",
        variables=variables("noise"),
        panels=(
            spread("noise", "LAeq", "LAeq over the selected meters", "dB"),
            by_device("noise", "LAeq", "LAeq per meter", "dB", thresholds=loud),
            by_device("noise", "LAmax", "LAmax per meter (highest in each window)", "dB", agg="max", thresholds=loud),
            top("noise", "LAeq", "Loudest meters (mean LAeq)", "dB"),
            latest_table("noise", (("LAeq", "LAeq dB(A)"), ("LAmax", "LAmax dB(A)"), ("temperature", "°C"))),
        ),
    )


def traffic() -> Dashboard:
    cameras = variables("camera")[1]
    camera_vars = (
        Variable(name="camera", label="Camera", query=cameras.query, sql=cameras.sql, sql_all=cameras.sql_all),
    )
    counts = (
        f'SELECT sum("vehicleCount") AS "vehicles", sum("peopleCount") AS "people" FROM {raw("camera")} '
        f"{where(*selected('camera'))} GROUP BY {BY_TIME} fill(0)"
    )
    counts_sql = sql.raw_trend(
        (
            ("sum(CASE WHEN s.metric = 'vehicleCount' THEN r.value END)", "vehicles"),
            ("sum(CASE WHEN s.metric = 'peopleCount' THEN r.value END)", "people"),
        ),
        sql.metrics_in("vehicleCount", "peopleCount"),
        sql.chosen("gateway", "gateway"),
        sql.chosen("device", "camera"),
    )
    return Dashboard(
        uid="misto-traffic",
        title="Misto · Traffic",
        description="TC-1 loop counters (measurement traffic) and street cameras' counts (measurement camera).",
        tags=("traffic",),
        time_from="now-6h",
        variables=(*variables("traffic", "device", "Counter"), *camera_vars),
        panels=(
            by_device("traffic", "intensity", "Flow per counter", "vehicles/h"),
            by_device("traffic", "averageVehicleSpeed", "Average speed per counter", "velocitykmh"),
            by_device("traffic", "occupancy", "Loop occupancy per counter", "percentunit", maximum=1.0),
            spread("traffic", "averageVehicleSpeed", "Speed over the selected counters", "velocitykmh"),
            Panel(
                title="Camera counts (selected cameras, per window)",
                type=TS,
                unit="short",
                width=12,
                queries=(Query(counts, alias="$col", sql=counts_sql),),
                description="People and vehicles the street cameras counted, summed per window.",
            ),
            top("traffic", "intensity", "Busiest counters (mean flow)", "vehicles/h"),
            latest_table(
                "traffic", (("intensity", "Flow /h"), ("averageVehicleSpeed", "km/h"), ("occupancy", "Occupancy"))
            ),
        ),
    )


def parking() -> Dashboard:
    controllers = Variable(
        name="controller",
        label="Controller",
        query=(
            'SHOW TAG VALUES FROM "parking" WITH KEY = "device" '
            f'WHERE {tag_is("gateway", "gateway")} AND "device" !~ /\\./'
        ),
        sql=sql.values_of("device", MARKER["parking"], sql.chosen("gateway", "gateway")),
        sql_all=sql.all_of("device"),
    )
    gateway = sql.chosen("gateway", "gateway")
    sql_ctl = (gateway, sql.chosen("device", "controller"))
    free_sql = (  # each controller's mean per window, summed over controllers
        f'SELECT time, sum(v) AS "free bays" FROM (SELECT {sql.window("r.ts")}, avg(r.value) AS v '
        f"{sql.raw_rows(sql.metrics_in('availableSpotNumber'), *sql_ctl)} GROUP BY 1, s.id) GROUP BY 1 ORDER BY 1"
    )
    first_bays = (  # the bays (<controller>.bayN) of the chosen controllers, the first 64 by name
        "s.id IN (SELECT b.id FROM series AS b WHERE b.metric = 'occupied' "
        "AND b.gateway IN (${gateway:sqlstring}) "
        "AND substr(b.device, 1, instr(b.device, '.bay') - 1) IN (${controller:sqlstring}) "
        "ORDER BY b.device LIMIT 64)"
    )
    bays_sql = (  # each bay's last state per window
        "SELECT time, device, occupied FROM ("
        f"SELECT {sql.window('r.ts')}, s.device AS device, r.value AS occupied, max(r.ts) "
        f"{sql.raw_rows(first_bays)} GROUP BY 1, 2) ORDER BY 1"
    )
    occupancy_sql = sql.per_device(
        "avg(r.value)", "occupancy", *sql.of_series("occupancy", MARKER["parking"]), *sql_ctl
    )
    latest_sql = sql.latest(
        (("availableSpotNumber", "free bays"), ("occupancy", "occupancy")), sql.of_kind(MARKER["parking"]), *sql_ctl
    )
    ctl = (tag_is("gateway", "gateway"), tag_is("device", "controller"))
    free = (
        f'SELECT sum("free") FROM (SELECT mean("availableSpotNumber") AS "free" FROM {raw("parking")} '
        f'{where(*ctl)} GROUP BY {BY_TIME}, "device") GROUP BY {BY_TIME}'
    )
    bays = (
        f'SELECT last("occupied") FROM {raw("parking")} WHERE {tag_is("gateway", "gateway")} '
        f'AND "device" =~ /^$controller\\.bay\\d+$/ AND $timeFilter '
        f'GROUP BY {BY_TIME}, "device" fill(previous) SLIMIT 64'
    )
    occupancy = f'SELECT mean("occupancy") FROM {raw("parking")} {where(*ctl)} GROUP BY {BY_TIME}, "device" fill(none)'
    latest = (
        f'SELECT last("availableSpotNumber") AS "free bays", last("occupancy") AS "occupancy" FROM {raw("parking")} '
        f'{where(*ctl)} GROUP BY "device", "gateway"'
    )
    return Dashboard(
        uid="misto-parking",
        title="Misto · Parking",
        description="PB-1 bay controllers (measurement parking): free bays, occupancy, and each bay's state "
        "(devices <controller>.bayN, field occupied).",
        tags=("parking",),
        time_from="now-6h",
        variables=(variables("parking")[0], controllers),
        panels=(
            Panel(
                title="Free bays (selected controllers)",
                type=STAT,
                unit="short",
                width=6,
                queries=(Query(free, sql=free_sql),),
                description="Sum over controllers of each one's mean free bays per window; the last window shown.",
            ),
            Panel(
                title="Free bays over time",
                type=TS,
                unit="short",
                width=18,
                queries=(Query(free, alias="free bays", sql=free_sql),),
            ),
            Panel(
                title="Occupancy per controller",
                type=TS,
                unit="percentunit",
                maximum=1.0,
                width=12,
                queries=(Query(occupancy, alias=DEVICE_ALIAS, sql=occupancy_sql),),
            ),
            Panel(
                title="Bay state (first 64 bays)",
                type=TIMELINE,
                width=12,
                queries=(Query(bays, alias=DEVICE_ALIAS, sql=bays_sql),),
                mappings=(("0", "free", "green"), ("1", "occupied", "red")),
                description="Each bay of the selected controllers: occupied (1) or free (0).",
            ),
            Panel(
                title="Latest per controller",
                type=TABLE,
                width=24,
                height=9,
                queries=(Query(latest, format=ResultFormat.TABLE, sql=latest_sql),),
            ),
        ),
    )


def waste() -> Dashboard:
    full = (  # floor(level / 0.8) is 1 from 80 % to 100 % full, else 0: a count that is 0, not "no data"
        f'SELECT sum("full") FROM (SELECT floor(last("fillingLevel") / 0.8) AS "full" FROM {raw("waste")} '
        f'{where(*selected())} GROUP BY "device")'
    )
    alarms = (
        f'SELECT max("tilted") AS "tilted", max("fireDetected") AS "fire" FROM {raw("waste")} {where(*selected())} '
        f"GROUP BY {BY_TIME} fill(none)"
    )
    bins = sql_selected("waste", "fillingLevel")
    full_sql = (  # 1 for a bin whose newest level is 0.8 or more, else 0: a count that is 0, not "no data"
        f'SELECT sum(v >= 0.8) AS "full" FROM (SELECT {sql.newest()} AS v FROM series AS s WHERE {" AND ".join(bins)})'
    )
    alarms_sql = sql.raw_trend(
        (
            ("max(CASE WHEN s.metric = 'tilted' THEN r.value END)", "tilted"),
            ("max(CASE WHEN s.metric = 'fireDetected' THEN r.value END)", "fire"),
        ),
        sql.metrics_in("tilted", "fireDetected"),
        *bins[1:],
    )
    return Dashboard(
        uid="misto-waste",
        title="Misto · Waste",
        description="WB-1 bin sensors (measurement waste): filling level, alarms, temperature and battery.",
        tags=("waste",),
        time_from="now-24h",
        variables=variables("waste", "device", "Bin"),
        panels=(
            Panel(
                title="Bins over 80 % full",
                type=STAT,
                unit="short",
                width=6,
                queries=(Query(full, format=ResultFormat.TABLE, sql=full_sql),),
                thresholds=(Threshold(None, "green"), Threshold(10.0, "orange"), Threshold(50.0, "red")),
                description="Selected bins whose last filling level in the range is above 0.8.",
            ),
            spread("waste", "fillingLevel", "Filling level over the selected bins", "percentunit", width=18),
            by_device("waste", "fillingLevel", "Filling level per bin", "percentunit", maximum=1.0),
            Panel(
                title="Alarms (any selected bin tilted / fire)",
                type=TS,
                width=12,
                queries=(Query(alarms, alias="$col", sql=alarms_sql),),
                maximum=1.0,
                description="1 in a window where any selected bin reported the alarm.",
            ),
            by_device("waste", "temperature", "Temperature in the bins", "celsius", agg="max"),
            top("waste", "batteryLevel", "Lowest batteries", "percentunit", bottom=True),
            latest_table(
                "waste",
                (("fillingLevel", "Fill"), ("tilted", "Tilted"), ("fireDetected", "Fire"), ("batteryLevel", "Battery")),
            ),
        ),
    )
