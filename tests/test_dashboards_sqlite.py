"""Every panel of the SQLite flavour of the dashboards, run against a real SQLite store holding a
simulated city's data, with Grafana's variables substituted as Grafana and the
frser-sqlite-datasource plugin do.

The data goes in through the store's public write path (``SqliteStore.open``, ``write_messages``,
``set_gateway_status``, ``set_gateway_health``, ``record_ingest``); the store's triggers fill the
rollup tables as the readings commit. Then each panel's SQL is run on its own read-only
connection to the store's file, as the plugin opens it (``mode=ro``).

What the plugin receives: Grafana substitutes ``$__from`` / ``$__to`` (the panel's range in epoch
milliseconds, narrowed by a panel's relative time), ``$__interval_ms`` and the template variables
in ``rawQueryText`` before the query reaches the plugin (which substitutes ``$__from`` / ``$__to``
itself only for alerts). The plugin has no other macro that Misto's dashboards use.

A panel passes when its query has no error, returns at least one non-null value, and (as a time
series) a ``time`` column of whole Unix seconds within the range. A metric that no series has
gives no rows rather than an error, so the non-empty rule is what catches it
(``test_a_corrupted_panel_query_fails``).

``MISTO_CITY_BENCH=1`` also runs the city-scale variant (1,000 devices, 24 hours), which times
every city-overview panel (several runs: p50 and max) and checks them against the issue's 500 ms.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from misto.cloud.dashboards.generate import sqlite_dashboards
from misto.cloud.dashboards.model import SQLITE_DATASOURCE_TYPE, SQLITE_DATASOURCE_UID, Flavour, render
from misto.cloud.storage.base import IngestSnapshot, MessageWrite, to_ms
from misto.cloud.storage.sqlite import SqliteStore
from misto.sim.city import City, CitySpec
from tests.test_dashboards_influx import duration_s, grafana_interval

OVERVIEW_UID = "misto-city-overview-sqlite"
TARGET_MS = 500.0


@dataclass
class Loaded:
    path: Path
    start_ms: int
    end_ms: int
    devices: int
    messages: int = 0
    readings: int = 0
    load_s: float = 0.0


def load_city(path: Path, spec: CitySpec, hours: float) -> Loaded:
    """Generate ``hours`` of ``spec``'s city ending now and store it through the SQLite store."""
    return asyncio.run(_load(path, spec, hours))


async def _load(path: Path, spec: CitySpec, hours: float) -> Loaded:
    step = int(spec.poll_interval_s)
    end = datetime.fromtimestamp(int(time.time()) // step * step, UTC)
    start = end - timedelta(hours=hours)
    city = City(spec, start=start)
    loaded = Loaded(path, to_ms(start), to_ms(end), devices=len(city.devices))
    now = [start]  # the store's clock follows the city's

    def clock() -> datetime:
        return now[0]

    began = time.perf_counter()
    async with await SqliteStore.open(path, clock=clock) as store:
        for tick in city.ticks(end):
            now[0] = tick.at + timedelta(seconds=2)
            for status in tick.status:
                await store.set_gateway_status(
                    status.gateway,
                    status.state,
                    boot=status.boot,
                    at=status.at,
                    agent_version=status.agent_version,
                    received_at=status.at,
                )
            batch = [MessageWrite(m.message_id, m.gateway, m.readings) for m in tick.telemetry]
            assert all(await store.write_messages(batch)), "the city never repeats a message id"
            loaded.messages += len(batch)
            loaded.readings += sum(len(m.readings) for m in tick.telemetry)
            for health in tick.health:
                await store.set_gateway_health(health, received_at=health.at)
            await store.record_ingest(
                IngestSnapshot(
                    instance="ingester-1",
                    at=tick.at + timedelta(seconds=2),
                    messages_in=loaded.messages,
                    readings_in=loaded.readings,
                    readings_written=loaded.readings,
                    rejected=0,
                    duplicates=0,
                    store_errors=0,
                    queue_depth=len(batch),
                    batch_mean_readings=loaded.readings / loaded.messages if loaded.messages else 0.0,
                    write_p99_ms=1.0,
                    lag_s=0.2,
                )
            )
    loaded.load_s = time.perf_counter() - began
    return loaded


# ---------------------------------------------------------------------------------------------
# What Grafana and the plugin send
# ---------------------------------------------------------------------------------------------


@dataclass
class Frame:
    """The dashboard's time range (epoch ms) and the variables' values."""

    start_ms: int
    end_ms: int
    values: dict[str, str] = field(default_factory=dict)


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
        assert variable["type"] == "custom", f"${name}: only custom variables are substituted here"
        value = frame.values.get(name, variable["current"]["value"])
        out = out.replace("${" + name + "}", value).replace("$" + name, value)
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


def frames_for(model: dict[str, Any], loaded: Loaded) -> Iterator[tuple[str, Frame]]:
    """The loaded range with each option of each custom variable (its default first)."""
    custom = [v for v in model["templating"]["list"] if v["type"] == "custom"]
    yield "default", Frame(loaded.start_ms, loaded.end_ms)
    for variable in custom:
        for option in variable["options"][1:]:
            yield (
                f"${variable['name']}={option['value']}",
                Frame(loaded.start_ms, loaded.end_ms, {variable["name"]: option["value"]}),
            )


@dataclass
class Timing:
    dashboard: str
    panel: str
    ms: list[float]


def check_dashboards(loaded: Loaded, *, runs: int = 1) -> list[Timing]:
    timings: list[Timing] = []
    failures: list[str] = []
    with connect(loaded.path) as db:
        for board in sqlite_dashboards():
            model = render(board, Flavour.SQLITE)
            variables = {v["name"]: v for v in model["templating"]["list"]}
            for label, frame in frames_for(model, loaded):
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
                        name = panel["title"] + ("" if label == "default" else f" [{label}]")
                        timings.append(Timing(model["uid"], name, ms))
    db.close()
    assert not failures, "\n".join(failures)
    return timings


def report(timings: list[Timing], title: str) -> None:
    print(f"\n{title}")
    print(f"  {'p50 ms':>8} {'max ms':>8}  dashboard / panel")
    for t in timings:
        print(f"  {statistics.median(t.ms):8.1f} {max(t.ms):8.1f}  {t.dashboard} / {t.panel}")


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

SMALL = CitySpec(gateways=10, devices=100, seed=4)
SMALL_HOURS = 6


def test_every_panel_of_every_sqlite_dashboard_returns_data(tmp_path: Path) -> None:
    loaded = load_city(tmp_path / "misto.db", SMALL, SMALL_HOURS)
    timings = check_dashboards(loaded)
    assert {t.dashboard for t in timings} == {f"{b.uid}-sqlite" for b in sqlite_dashboards()}
    assert OVERVIEW_UID in {t.dashboard for t in timings}
    report(
        timings,
        f"{loaded.devices} devices, {SMALL_HOURS} h: {loaded.readings} readings in {loaded.messages} messages "
        f"stored in {loaded.load_s:.1f} s",
    )


def test_a_corrupted_panel_query_fails(tmp_path: Path) -> None:
    loaded = load_city(tmp_path / "misto.db", CitySpec(gateways=2, devices=12, seed=2), 1)
    model = render(next(b for b in sqlite_dashboards() if b.uid == "misto-city-overview"), Flavour.SQLITE)
    panel = next(p for p in model["panels"] if "'pm25'" in p["targets"][0]["rawQueryText"])
    frame = Frame(loaded.start_ms, loaded.end_ms)
    good = substitute(panel["targets"][0]["rawQueryText"], frame, min_interval=panel["interval"], variables={})

    def check(where: str, query: str) -> float:
        return check_panel_query(db, where, query, series=True, frame=frame)

    with connect(loaded.path) as db:
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


BIG = CitySpec(gateways=20, devices=1000, seed=1)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MISTO_CITY_BENCH") != "1", reason="a bench: set MISTO_CITY_BENCH=1 (a few min)")
@pytest.mark.timeout(1200)
def test_sqlite_city_overview_at_city_scale(tmp_path: Path) -> None:
    loaded = load_city(tmp_path / "misto.db", BIG, 24)
    timings = check_dashboards(loaded, runs=7)
    report(
        timings,
        f"{loaded.devices} devices, 24 h: {loaded.readings} readings in {loaded.messages} messages stored "
        f"through the SQLite store in {loaded.load_s:.1f} s ({loaded.path.stat().st_size / 1e6:.0f} MB); 7 runs each",
    )
    overview = [t for t in timings if t.dashboard == OVERVIEW_UID]
    slow = [(t.panel, max(t.ms)) for t in overview if max(t.ms) > TARGET_MS]
    assert not slow, f"city-overview panels over {TARGET_MS} ms: {slow}"


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
