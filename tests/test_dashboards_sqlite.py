"""Every panel of every SQLite-flavoured dashboard, run against a real SQLite store holding a
simulated city's data, with Grafana's variables substituted as Grafana and the
frser-sqlite-datasource plugin do.

The data goes in through the store's public write path (tests/city_load.py: ``SqliteStore.open``,
``write_messages``, ``set_gateway_status``, ``set_gateway_health``, ``record_ingest``); the
store's triggers fill the rollup tables as the readings commit. Then each panel's SQL is run on
its own read-only connection to the store's file, as the plugin opens it (``mode=ro``).

What the plugin receives: Grafana substitutes ``$__from`` / ``$__to`` (the panel's range in epoch
milliseconds, narrowed by a panel's relative time), ``$__interval_ms`` and the template variables
in ``rawQueryText`` before the query reaches the plugin (which substitutes ``$__from`` / ``$__to``
itself only for alerts). A query variable is written ``${name:sqlstring}``: Grafana quotes each
chosen value as an SQL string (``'a','b'``), and "All" is the variable's custom all value, which
Grafana inserts as it is (a subquery such as ``SELECT device FROM series``). The values "one" and
"two" are taken from the variables' own SQL on the loaded data, chained as Grafana chains them.

A panel passes when its query has no error, returns at least one non-null value, and (as a time
series) a ``time`` column of whole Unix seconds within the range. A metric that no series has
gives no rows rather than an error, so the non-empty rule is what catches it
(``test_a_corrupted_panel_query_fails``).

``MISTO_CITY_BENCH=1`` also runs the city-scale variant (1,000 devices, 24 hours), which times
every panel of every SQLite dashboard (several runs: p50 and max) and checks each against the
issue's 500 ms as the dashboard opens (its own default range, "All", the default resolution).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from misto.cloud.dashboards.generate import sqlite_dashboards
from misto.cloud.dashboards.model import SQLITE_DATASOURCE_TYPE, SQLITE_DATASOURCE_UID, Flavour, render
from misto.cloud.storage.sqlite import SqliteStore
from misto.sim.city import CitySpec
from tests import city_load
from tests.city_load import Clock, Loaded
from tests.test_dashboards_influx import duration_s, grafana_interval

OVERVIEW_UID = "misto-city-overview-sqlite"
TARGET_MS = 500.0
ALL = "$__all"


def load_city(path: Path, spec: CitySpec, hours: float) -> Loaded:
    """Generate ``hours`` of ``spec``'s city ending now and store it through the SQLite store."""

    async def open_store(clock: Clock) -> SqliteStore:
        return await SqliteStore.open(path, clock=clock)

    return city_load.load_city(open_store, spec, hours)


# ---------------------------------------------------------------------------------------------
# What Grafana and the plugin send
# ---------------------------------------------------------------------------------------------


@dataclass
class Frame:
    """The dashboard's time range (epoch ms) and the variables' values (a list, or ``ALL``)."""

    start_ms: int
    end_ms: int
    values: dict[str, list[str] | str] = field(default_factory=dict)


def sqlstring(values: list[str]) -> str:
    """Grafana's ``sqlstring`` format: each value single-quoted, quotes doubled, comma-separated."""
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def substitute(query: str, frame: Frame, *, min_interval: str, variables: dict[str, Any], time_from: str = "") -> str:
    """The query the plugin runs. ``time_from``: the panel's relative time ("1h": the last hour)."""
    start_ms, end_ms = frame.start_ms, frame.end_ms
    if time_from:
        start_ms = end_ms - duration_s(time_from) * 1000
    interval_s = grafana_interval(end_ms - start_ms, min_interval)
    out = query.replace("$__from", str(start_ms)).replace("$__to", str(end_ms))
    out = out.replace("$__interval_ms", str(interval_s * 1000))
    for name in sorted(variables, key=len, reverse=True):
        variable = variables[name]
        chosen = frame.values.get(name, ALL)
        if variable["type"] == "custom":  # one value, used as it is
            value = variable["current"]["value"] if chosen == ALL else chosen[0]
            out = out.replace("${" + name + "}", value).replace("$" + name, value)
            continue
        # a query variable: All is its custom all value, inserted unformatted; values are quoted
        value = variable["allValue"] if chosen == ALL else sqlstring(list(chosen))
        out = out.replace("${" + name + ":sqlstring}", value)
        assert "$" + name not in out, f"${name} not written ${{{name}:sqlstring}}: {query}"
    assert "$" not in out, f"unsubstituted variable left in {out!r}"
    return out


class PanelQueryError(AssertionError):
    pass


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store's file, as the plugin opens it."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def check_panel_query(db: sqlite3.Connection, where: str, query: str, *, series: bool, frame: Frame) -> float:
    """Run one substituted query; raise naming ``where`` on an error, no data or a bad time
    column. Milliseconds taken."""
    started = time.perf_counter()
    try:
        cursor = db.execute(query)
        rows = cursor.fetchall()
    except sqlite3.Error as exc:
        raise PanelQueryError(f"{where}: SQL error {exc} for {query}") from exc
    ms = (time.perf_counter() - started) * 1000
    names = [d[0] for d in cursor.description or ()]
    values = [v for row in rows for name, v in zip(names, row, strict=True) if name != "time" and v is not None]
    if not values:
        raise PanelQueryError(f"{where}: no data (missing table, metric or column?) for {query}")
    if series:
        if "time" not in names:
            raise PanelQueryError(f"{where}: a time series needs a time column, got {names}")
        times = [row[names.index("time")] for row in rows]
        lo, hi = frame.start_ms // 1000 - 3600, frame.end_ms // 1000
        if any(not isinstance(t, int) or not lo <= t <= hi for t in times) or times != sorted(times):
            raise PanelQueryError(f"{where}: time must be whole Unix seconds in the range, in order: {times[:5]}")
    return ms


def variable_values(db: sqlite3.Connection, query: str) -> list[str]:
    """A query variable's values, as the plugin's ``metricFindQuery`` reads them: one column."""
    rows = db.execute(query).fetchall()
    assert all(len(row) == 1 for row in rows), f"a variable's query must return one column: {query}"
    return [str(row[0]) for row in rows]


def frames_for(db: sqlite3.Connection, model: dict[str, Any], loaded: Loaded) -> Iterator[tuple[str, Frame]]:
    """As the dashboard opens ("default": its own time range, "All", the first option of each
    custom variable); each other option of each custom variable; and one and two values of each
    query variable (chained: later variables see the earlier ones' choice) over the loaded range."""
    variables = {v["name"]: v for v in model["templating"]["list"]}
    opens_ms = max(loaded.start_ms, loaded.end_ms - duration_s(model["time"]["from"].removeprefix("now-")) * 1000)
    yield "default", Frame(opens_ms, loaded.end_ms)
    for name, variable in variables.items():
        if variable["type"] == "custom":
            for option in variable["options"][1:]:
                yield f"${name}={option['value']}", Frame(loaded.start_ms, loaded.end_ms, {name: [option["value"]]})
    if not any(v["type"] == "query" for v in variables.values()):
        return
    for label, count in (("one", 1), ("two", 2)):
        frame = Frame(loaded.start_ms, loaded.end_ms)
        for name, variable in variables.items():
            if variable["type"] == "query":
                query = substitute(variable["query"], frame, min_interval="", variables=variables)
                found = variable_values(db, query)
                assert found, f"{model['uid']}: variable ${name} has no values: {query}"
                frame.values[name] = found[:count]
        yield label, frame


@dataclass
class Timing:
    dashboard: str
    panel: str
    label: str
    ms: list[float]


def check_dashboards(path: Path, loaded: Loaded, *, runs: int = 1) -> list[Timing]:
    timings: list[Timing] = []
    failures: list[str] = []
    with connect(path) as db:
        for board in sqlite_dashboards():
            model = render(board, Flavour.SQLITE)
            variables = {v["name"]: v for v in model["templating"]["list"]}
            for label, frame in frames_for(db, model, loaded):
                for panel in model["panels"]:
                    for target in panel["targets"]:
                        where = f"{model['uid']} / {panel['title']} / {target['refId']} ({label})"
                        query = substitute(
                            target["rawQueryText"],
                            frame,
                            min_interval=panel.get("interval", ""),
                            variables=variables,
                            time_from=panel.get("timeFrom", ""),
                        )
                        series = target["queryType"] == "time series"
                        try:
                            ms = [check_panel_query(db, where, query, series=series, frame=frame) for _ in range(runs)]
                        except PanelQueryError as exc:
                            failures.append(str(exc))
                            continue
                        timings.append(Timing(model["uid"], panel["title"], label, ms))
    db.close()
    assert not failures, "\n".join(failures)
    return timings


def report(timings: list[Timing], title: str) -> None:
    print(f"\n{title}")
    print(f"  {'p50 ms':>8} {'max ms':>8}  dashboard / panel [values]")
    for t in timings:
        print(f"  {statistics.median(t.ms):8.1f} {max(t.ms):8.1f}  {t.dashboard} / {t.panel} [{t.label}]")


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

SMALL = CitySpec(gateways=10, devices=100, seed=4)
SMALL_HOURS = 6


def test_every_panel_of_every_sqlite_dashboard_returns_data(tmp_path: Path) -> None:
    loaded = load_city(tmp_path / "misto.db", SMALL, SMALL_HOURS)
    timings = check_dashboards(tmp_path / "misto.db", loaded)
    assert {t.dashboard for t in timings} == {f"{b.uid}-sqlite" for b in sqlite_dashboards()}
    assert {t.dashboard for t in timings} >= {
        f"misto-{name}-sqlite" for name in ("city-overview", "air", "noise", "traffic", "parking", "waste", "ingest")
    }
    every_panel = {
        (b.uid + "-sqlite", p.title, label) for b in sqlite_dashboards() for p in b.panels for label in ("default",)
    }
    assert every_panel <= {(t.dashboard, t.panel, t.label) for t in timings}
    report(
        timings,
        f"{loaded.devices} devices, {SMALL_HOURS} h: {loaded.readings} readings in {loaded.messages} messages "
        f"stored in {loaded.load_s:.1f} s",
    )


def test_a_corrupted_panel_query_fails(tmp_path: Path) -> None:
    path = tmp_path / "misto.db"
    loaded = load_city(path, CitySpec(gateways=2, devices=12, seed=2), 1)
    model = render(next(b for b in sqlite_dashboards() if b.uid == "misto-city-overview"), Flavour.SQLITE)
    panel = next(p for p in model["panels"] if "'pm25'" in p["targets"][0]["rawQueryText"])
    frame = Frame(loaded.start_ms, loaded.end_ms)
    good = substitute(panel["targets"][0]["rawQueryText"], frame, min_interval=panel["interval"], variables={})

    def check(where: str, query: str) -> float:
        return check_panel_query(db, where, query, series=True, frame=frame)

    with connect(path) as db:
        check("as generated", good)
        with pytest.raises(PanelQueryError, match="no data"):
            check("misspelt metric", good.replace("'pm25'", "'pm2_5'"))
        seconds = good.replace(str(loaded.start_ms), str(loaded.start_ms // 1000))
        seconds = seconds.replace(str(loaded.end_ms), str(loaded.end_ms // 1000))
        with pytest.raises(PanelQueryError, match="no data"):  # the range in seconds, not milliseconds
            check("seconds for milliseconds", seconds)
        with pytest.raises(PanelQueryError, match="SQL error"):
            check("missing table", good.replace("rollup_1m", "rollup_5m"))
        with pytest.raises(PanelQueryError, match="SQL error"):
            check("broken syntax", good.replace("GROUP BY", "GROUP"))
        with pytest.raises(PanelQueryError, match="whole Unix seconds"):  # milliseconds in the time column
            check("time in ms", good.replace(" / 1000 AS time", " AS time"))
    db.close()


def test_a_query_variable_not_quoted_as_sql_strings_fails(tmp_path: Path) -> None:
    path = tmp_path / "misto.db"
    loaded = load_city(path, CitySpec(gateways=2, devices=12, seed=2), 1)
    model = render(next(b for b in sqlite_dashboards() if b.uid == "misto-air"), Flavour.SQLITE)
    variables = {v["name"]: v for v in model["templating"]["list"]}
    panel = next(p for p in model["panels"] if p["title"] == "PM2.5 per station")
    query = panel["targets"][0]["rawQueryText"]
    frame = Frame(loaded.start_ms, loaded.end_ms, {"device": ["aq1-0001"]})
    with connect(path) as db:
        check_panel_query(
            db, "as generated", substitute(query, frame, min_interval="", variables=variables), series=True, frame=frame
        )
        with pytest.raises(AssertionError, match="sqlstring"):  # Grafana would send {a,b} or a bare name
            substitute(query.replace("${device:sqlstring}", "$device"), frame, min_interval="", variables=variables)
        other = Frame(loaded.start_ms, loaded.end_ms, {"device": ["nm1-0001"]})
        noise_meter = substitute(query, other, min_interval="", variables=variables)
        with pytest.raises(PanelQueryError, match="no data"):  # a device of another kind: no PM2.5
            check_panel_query(db, "noise meter", noise_meter, series=True, frame=other)
    db.close()


def test_substitution_matches_what_grafana_sends() -> None:
    frame = Frame(1_700_000_000_000, 1_700_086_400_000)
    variables = {"resolution": {"type": "custom", "current": {"value": "rollup_1h"}}}
    query = "SELECT r.start / $__interval_ms AS time FROM $resolution AS r WHERE r.start >= $__from AND r.start < $__to"
    assert substitute(query, frame, min_interval="1m", variables=variables) == (
        "SELECT r.start / 120000 AS time FROM rollup_1h AS r WHERE r.start >= 1700000000000 AND r.start < 1700086400000"
    )
    narrowed = substitute(query, frame, min_interval="1m", variables=variables, time_from="1h")
    assert "r.start >= 1700082800000" in narrowed  # the panel's relative time: the last hour
    assert "/ 60000 AS time" in narrowed
    chained = {"device": {"type": "query", "allValue": "SELECT device FROM series"}}
    query = "s.device IN (${device:sqlstring})"
    assert substitute(query, frame, min_interval="", variables=chained) == "s.device IN (SELECT device FROM series)"
    two = Frame(frame.start_ms, frame.end_ms, {"device": ["aq1-0001", "o'brien"]})
    assert substitute(query, two, min_interval="", variables=chained) == "s.device IN ('aq1-0001','o''brien')"


BIG = CitySpec(gateways=20, devices=1000, seed=1)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MISTO_CITY_BENCH") != "1", reason="a bench: set MISTO_CITY_BENCH=1 (a few min)")
@pytest.mark.timeout(1200)
def test_sqlite_dashboards_at_city_scale(tmp_path: Path) -> None:
    path = tmp_path / "misto.db"
    loaded = load_city(path, BIG, 24)
    timings = check_dashboards(path, loaded, runs=7)
    report(
        timings,
        f"{loaded.devices} devices, 24 h: {loaded.readings} readings in {loaded.messages} messages stored "
        f"through the SQLite store in {loaded.load_s:.1f} s ({path.stat().st_size / 1e6:.0f} MB); 7 runs each",
    )
    as_opened = [t for t in timings if t.label == "default" or t.dashboard == OVERVIEW_UID]
    slow = [(t.dashboard, t.panel, t.label, max(t.ms)) for t in as_opened if max(t.ms) > TARGET_MS]
    assert not slow, f"panels over {TARGET_MS} ms as the dashboards open: {slow}"


def test_sqlite_provisioning_names_the_plugin_and_every_panel_uses_it() -> None:
    root = Path(__file__).resolve().parents[1] / "dashboards" / "grafana" / "sqlite" / "provisioning"
    [source] = yaml.safe_load((root / "datasources" / "misto-sqlite.yaml").read_text(encoding="utf-8"))["datasources"]
    assert (source["uid"], source["type"]) == (SQLITE_DATASOURCE_UID, SQLITE_DATASOURCE_TYPE)
    assert source["jsonData"]["pathOptions"] == "mode=ro"  # Grafana only reads the store's file
    [provider] = yaml.safe_load((root / "dashboards" / "misto.yaml").read_text(encoding="utf-8"))["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/misto"
    for board in sqlite_dashboards():
        model = render(board, Flavour.SQLITE)
        for panel in model["panels"]:
            assert panel["datasource"]["uid"] == SQLITE_DATASOURCE_UID, panel["title"]
            assert all(t["datasource"]["uid"] == SQLITE_DATASOURCE_UID for t in panel["targets"]), panel["title"]
