"""Every panel of every generated dashboard, run against a real ``influxd`` holding a simulated
city's data, with Grafana's macros and template variables substituted as Grafana does.

The data goes in through the real write path (tests/city_load.py): ``misto.sim.city`` messages
stored by the InfluxDB store (``InfluxStore.open``: database, retention policies raw / rollup_1m /
rollup_1h and continuous queries; ``write_messages``, ``set_gateway_status``, ``set_gateway_health``,
``record_ingest``),
then ``InfluxStore.backfill`` fills the rollups over the loaded range (the continuous queries' own
``SELECT ... INTO``, as after an import).

A panel passes when its query has no error and returns at least one non-null value. A query on
a missing measurement or field returns nothing in InfluxQL (not an error), so the non-empty
rule is what catches it (see ``test_a_panel_on_a_missing_field_or_measurement_fails``).

``MISTO_CITY_BENCH=1`` also runs the city-scale variant (1,000 devices, 24 hours: a few minutes
to generate and store), which prints each panel's query time and checks the city overview's
against the issue's 500 ms target.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from misto.cloud.dashboards.generate import dashboards
from misto.cloud.dashboards.model import render
from misto.cloud.settings import InfluxStoreSettings
from misto.cloud.storage.influx import InfluxStore
from misto.sim.city import CitySpec
from tests import city_load
from tests.city_load import Clock, Loaded
from tests.fixtures.influxd import InfluxInfo, new_influxd

DB = "misto"
OVERVIEW_UID = "misto-city-overview"
TARGET_MS = 500.0


# ---------------------------------------------------------------------------------------------
# Loading a city through the write path (tests/city_load.py)
# ---------------------------------------------------------------------------------------------


def load_city(server: InfluxInfo, spec: CitySpec, hours: float) -> Loaded:
    """Generate ``hours`` of ``spec``'s city ending now and store it through the InfluxDB store,
    then fill its rollups over the loaded range (``InfluxStore.backfill``, as after an import)."""

    async def open_store(clock: Clock) -> InfluxStore:
        # generous timeouts: influxd shares the 2 cores with the loader at city scale
        settings = InfluxStoreSettings(url=server.url, database=DB, timeout_s=300.0, retry_deadline_s=900.0)
        return await InfluxStore.open(settings, clock=clock)

    async def rollups(store: InfluxStore, start: datetime, end: datetime) -> None:
        await store.backfill(start, end + timedelta(hours=1))

    loaded = city_load.load_city(open_store, spec, hours, finish=rollups)
    assert loaded.health_refused == 0, f"{loaded.health_refused} health messages not kept"
    return loaded


# ---------------------------------------------------------------------------------------------
# Grafana's substitution
# ---------------------------------------------------------------------------------------------

_NICE_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 21600, 43200, 86400)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|{}\[\]/]")
ALL = "$__all"


def duration_s(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd])", text)
    assert match, f"not a Grafana interval: {text!r}"
    return int(match[1]) * _UNIT_S[match[2]]


def grafana_interval(range_ms: int, min_interval: str, max_points: int = 1000) -> int:
    """``$__interval`` in seconds: the range over the panel's data points, rounded up to a nice
    step, never under the panel's minimum interval."""
    raw_s = range_ms / 1000 / max_points
    nice = next((s for s in _NICE_S if s >= raw_s), _NICE_S[-1])
    return max(nice, duration_s(min_interval) if min_interval else 1)


def fmt_interval(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def regex_value(values: list[str] | str, all_value: str) -> str:
    """A multi-value or include-All variable in a regex, as Grafana's InfluxDB datasource writes it."""
    if values == ALL:
        return all_value
    escaped = [_REGEX_SPECIAL.sub(lambda m: "\\" + m[0], v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


@dataclass
class Frame:
    """What Grafana would send: a time range (relative to now, or absolute) and variable values."""

    start_ms: int
    end_ms: int
    relative: str | None = None  # e.g. "6h": time >= now() - 6h
    values: dict[str, list[str] | str] = field(default_factory=dict)


def substitute(
    query: str, frame: Frame, *, min_interval: str, variables: dict[str, dict[str, Any]], time_from: str = ""
) -> str:
    """The query Grafana sends; ``time_from`` is the panel's relative time ("1h": the last hour)."""
    if time_from:
        span_ms = duration_s(time_from) * 1000
        frame = Frame(frame.end_ms - span_ms, frame.end_ms, relative=time_from if frame.relative else None)
    if frame.relative:
        time_filter = f"time >= now() - {frame.relative}"
    else:
        time_filter = f"time >= {frame.start_ms}ms and time <= {frame.end_ms}ms"
    interval = grafana_interval(frame.end_ms - frame.start_ms, min_interval)
    out = query.replace("$timeFilter", time_filter)
    out = out.replace("$__interval_ms", str(interval * 1000)).replace("$__interval", fmt_interval(interval))
    for name in sorted(variables, key=len, reverse=True):
        variable = variables[name]
        chosen = frame.values.get(name, ALL)
        if variable.get("type") == "custom":  # one value, used as it is
            value = variable["current"]["value"] if chosen == ALL else chosen[0]
        else:
            value = regex_value(chosen, variable.get("allValue") or ".*")
        out = out.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in out.replace("$/", ""), f"unsubstituted macro left in {out!r}"
    return out


# ---------------------------------------------------------------------------------------------
# Running panels
# ---------------------------------------------------------------------------------------------


class PanelQueryError(AssertionError):
    pass


def run(server: InfluxInfo, query: str) -> tuple[list[dict[str, Any]], float]:
    body = urllib.parse.urlencode({"q": query, "db": DB, "epoch": "ms"}).encode()
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{server.url}/query", data=body, timeout=300) as response:
            results: list[dict[str, Any]] = json.load(response)["results"]
    except urllib.error.HTTPError as exc:  # a statement InfluxDB cannot parse: 400 with {"error": ...}
        results = [{"error": json.loads(exc.read() or b"{}").get("error", f"HTTP {exc.code}")}]
    return results, (time.perf_counter() - started) * 1000


def check_panel_query(server: InfluxInfo, where: str, query: str) -> float:
    """Run one substituted query; raise naming ``where`` on an error or no data. Milliseconds taken."""
    results, ms = run(server, query)
    for result in results:
        if "error" in result:
            raise PanelQueryError(f"{where}: InfluxQL error {result['error']!r} for {query}")
    values = [
        value
        for result in results
        for series in result.get("series", [])
        for row in series.get("values", [])
        for value in row[1:]
        if value is not None
    ]
    if not values:
        raise PanelQueryError(f"{where}: no data (missing measurement, field or tag?) for {query}")
    return ms


def tag_values(server: InfluxInfo, query: str) -> list[str]:
    results, _ = run(server, query)
    assert "error" not in results[0], results
    return [row[1] for series in results[0].get("series", []) for row in series["values"]]


def frames_for(server: InfluxInfo, model: dict[str, Any], loaded: Loaded, hours: int) -> Iterator[tuple[str, Frame]]:
    """All values, one value, and two values of each variable (chained: later variables see the
    earlier ones' choice), with a relative and an absolute time range."""
    variables = {v["name"]: v for v in model["templating"]["list"]}
    yield "all", Frame(loaded.start_ms, loaded.end_ms, relative=f"{hours}h")
    for label, count in (("one", 1), ("two", 2)):
        frame = Frame(loaded.start_ms, loaded.end_ms)
        for name, variable in variables.items():
            if variable["type"] == "custom":  # not multi-value: its first, then its second option
                options = [option["value"] for option in variable["options"]]
                frame.values[name] = [options[min(count, len(options)) - 1]]
                continue
            query = substitute(variable["query"], frame, min_interval="", variables=variables)
            found = tag_values(server, query)
            assert found, f"{model['uid']}: variable ${name} has no values: {query}"
            frame.values[name] = found[:count]
        yield label, frame


@dataclass
class Timing:
    dashboard: str
    panel: str
    ms: float


def check_dashboards(server: InfluxInfo, loaded: Loaded, hours: int) -> list[Timing]:
    timings: list[Timing] = []
    failures: list[str] = []
    for board in dashboards():
        model = render(board)
        variables = {v["name"]: v for v in model["templating"]["list"]}
        for label, frame in frames_for(server, model, loaded, hours):
            for panel in model["panels"]:
                for target in panel["targets"]:
                    where = f"{board.uid} / {panel['title']} / {target['refId']} ({label})"
                    query = substitute(
                        target["query"],
                        frame,
                        min_interval=panel.get("interval", ""),
                        variables=variables,
                        time_from=panel.get("timeFrom", ""),
                    )
                    try:
                        ms = check_panel_query(server, where, query)
                    except PanelQueryError as exc:
                        failures.append(str(exc))
                        continue
                    if label in ("all", "two") and (label == "all" or "resolution" in variables):
                        name = panel["title"] + (" [$resolution=rollup_1m]" if label == "two" else "")
                        timings.append(Timing(board.uid, name, ms))
    assert not failures, "\n".join(failures)
    return timings


def report(timings: list[Timing], title: str) -> None:
    print(f"\n{title}")
    for t in timings:
        print(f"  {t.ms:8.1f} ms  {t.dashboard:22} {t.panel}")


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

SMALL = CitySpec(gateways=10, devices=100, seed=4)
SMALL_HOURS = 6


def test_every_panel_of_every_dashboard_returns_data(influxd: InfluxInfo) -> None:
    loaded = load_city(influxd, SMALL, SMALL_HOURS)
    timings = check_dashboards(influxd, loaded, SMALL_HOURS)
    assert {t.dashboard for t in timings} == {board.uid for board in dashboards()}
    report(
        timings,
        f"{loaded.devices} devices, {SMALL_HOURS} h: {loaded.readings} readings in {loaded.messages} messages "
        f"stored in {loaded.load_s:.1f} s, rollups in {loaded.rollup_s:.1f} s",
    )


def test_a_panel_on_a_missing_field_or_measurement_fails(influxd: InfluxInfo) -> None:
    loaded = load_city(influxd, CitySpec(gateways=2, devices=12, seed=2), 1)
    model = render(dashboards()[0])
    panel = next(p for p in model["panels"] if "mean_pm25" in p["targets"][0]["query"])
    frame = Frame(loaded.start_ms, loaded.end_ms, relative="1h")
    good = substitute(panel["targets"][0]["query"], frame, min_interval=panel.get("interval", ""), variables={})
    check_panel_query(influxd, "as generated", good)
    with pytest.raises(PanelQueryError, match="no data"):
        check_panel_query(influxd, "misspelt field", good.replace("mean_pm25", "mean_pm2_5"))
    with pytest.raises(PanelQueryError, match="no data"):
        check_panel_query(influxd, "missing measurement", good.replace('"air"', '"airr"'))
    with pytest.raises(PanelQueryError, match="no data"):
        check_panel_query(influxd, "raw field name in a rollup", good.replace("mean_pm25", "pm25"))
    with pytest.raises(PanelQueryError, match="InfluxQL error"):
        check_panel_query(influxd, "broken syntax", good.replace("GROUP BY", "GROUP"))


def test_grafana_substitution_matches_what_grafana_sends() -> None:
    frame = Frame(1_700_000_000_000, 1_700_021_600_000, values={"device": ["pb1-0001.bay3", "aq1-0002"]})
    variables = {"device": {"allValue": ".*"}, "gateway": {"allValue": ".*"}}
    query = (
        'SELECT mean("x") FROM "m" WHERE "device" =~ /^$device$/ AND "gateway" =~ /^$gateway$/ '
        "AND $timeFilter GROUP BY time($__interval)"
    )
    assert substitute(query, frame, min_interval="1m", variables=variables) == (
        'SELECT mean("x") FROM "m" WHERE "device" =~ /^(pb1-0001\\.bay3|aq1-0002)$/ AND "gateway" =~ /^.*$/ '
        "AND time >= 1700000000000ms and time <= 1700021600000ms GROUP BY time(1m)"
    )
    assert "GROUP BY time(30s)" in substitute(query, frame, min_interval="", variables=variables)  # 21.6 s rounded up
    assert grafana_interval(86_400_000, "1m") == 120


BIG = CitySpec(gateways=20, devices=1000, seed=1)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MISTO_CITY_BENCH") != "1", reason="a bench: set MISTO_CITY_BENCH=1 (about 2 min)")
@pytest.mark.timeout(900)
def test_city_overview_at_city_scale(tmp_path: Path) -> None:
    server = new_influxd(tmp_path / "influxd")
    try:
        loaded = load_city(server, BIG, 24)
        timings = check_dashboards(server, loaded, 24)
        overview = [t for t in timings if t.dashboard == OVERVIEW_UID and "[" not in t.panel]  # as opened
        report(
            timings,
            f"{loaded.devices} devices, 24 h: {loaded.readings} readings in {loaded.messages} messages stored in "
            f"{loaded.load_s:.1f} s, rollups in {loaded.rollup_s:.1f} s",
        )
        slow = [t for t in overview if t.ms > TARGET_MS]
        assert not slow, f"city-overview panels over {TARGET_MS} ms: {slow}"
    finally:
        server.stop()
