"""The citizens' sensor map in headless Chromium, fed by the real chain: the Kherson sample layers
loaded with ``misto-cloud layers load-sample``, a public and a private device registered through the
registry API, readings from the simulator through a gateway. The map shows every public layer's
features, a keyboard-reachable marker for the public device whose popup shows its live value and
unit, and nothing of the private device or the restricted layers; nothing leaves loopback (the base
tiles are off), no page errors, no failed requests."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route

from tests.fixtures.browser import chromium
from tests.fixtures.chain import BIN, Chain, Cloud
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import wait_until

pytestmark = pytest.mark.e2e

PUBLIC_LOCATION = {"lon": 32.6155, "lat": 46.6415}
PRIVATE_LOCATION = {"lon": 32.6321, "lat": 46.6487}
MODELS: list[dict[str, Any]] = [
    {"id": "aq1", "kind": "air", "manufacturer": "Misto", "name": "AQ-1", "metrics": ["pm25", "pm10"]},
    {"id": "nm1", "kind": "noise", "manufacturer": "Misto", "name": "NM-1", "metrics": ["LAeq"]},
]
GATEWAY: dict[str, Any] = {
    "id": "gw-test",
    "name": "Test gateway",
    "organisation": "City of Kherson",
    "visibility": "public",
}
DEVICES: list[dict[str, Any]] = [
    {"id": "aq-center-1", "gateway_id": "gw-test", "model_id": "aq1", "organisation": "City of Kherson",
     "location": PUBLIC_LOCATION, "district": "Tsentralnyi", "visibility": "public"},
    {"id": "nm-port-1", "gateway_id": "gw-test", "model_id": "nm1", "organisation": "Port authority",
     "location": PRIVATE_LOCATION, "owner_contact": "ops@port.example", "visibility": "private"},
]  # fmt: skip
PRIVATE_TRACES = ("nm-port-1", str(PRIVATE_LOCATION["lat"]), str(PRIVATE_LOCATION["lon"]), "ops@port.example")


def register(cloud: Cloud) -> None:
    requests: list[tuple[str, dict[str, Any]]] = [
        *(("device-models", model) for model in MODELS),
        ("gateways", GATEWAY),
        *(("devices", device) for device in DEVICES),
    ]
    for path, body in requests:
        status, answer = cloud.send("POST", f"/api/v1/registry/{path}", body)
        assert status == 201, f"POST {path} {body['id']}: {status} {answer}"


def load_sample_layers(chain: Chain) -> None:
    done = subprocess.run(
        [str(BIN / "misto-cloud"), "layers", "load-sample", "--config", str(chain.workdir / "cloud.yaml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def anonymous(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode("utf-8"))


def watch(page: Page, origin: str) -> tuple[list[str], list[str], list[str]]:
    """(errors, requests outside ``origin``, API URLs the page read); outside requests are refused."""
    errors: list[str] = []
    outside: list[str] = []
    api_reads: list[str] = []

    def route(route: Route) -> None:
        if route.request.url.startswith(origin + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    def requested(request: Request) -> None:
        if request.url.startswith(origin + "/api/"):
            api_reads.append(request.url)

    page.route("**/*", route)
    page.on("request", requested)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type in {"error", "warning"} else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url} {r.failure}") if r.url not in outside else None)
    return errors, outside, api_reads


def shown_value(value: float) -> set[str]:
    """How the page may print ``value`` (two decimals at most from 1 to 100)."""
    digits = 1 if abs(value) >= 100 else 2 if abs(value) >= 1 else 3
    return {f"{round(value, digits):g}", f"{round(value, digits):,.{digits}f}".rstrip("0").rstrip(".")}


def test_the_map_shows_public_layers_and_sensors_and_nothing_private(
    chain: Chain, mosquitto: BrokerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISTO_API__MAP_TILES_URL", "")  # no base tiles: nothing leaves loopback
    sim = chain.simulator({"aq-center-1": "aq1", "nm-port-1": "nm1"})
    cloud = chain.cloud()
    register(cloud)
    load_sample_layers(chain)
    chain.agent(sim)
    wait_until(lambda: len(cloud.get("/api/v1/devices", auth=True)) == 2, deadline_s=20, what="both devices (staff)")
    assert [d["device"] for d in cloud.get("/api/v1/devices")] == ["aq-center-1"]
    layers: dict[str, Any] = {s["layer"]: s for s in cloud.get("/api/v1/layers")["layers"] if s["feature_count"]}
    assert {"districts", "streets", "monuments"} <= set(layers)
    assert "water_network" not in layers  # restricted: staff only
    assert cloud.get("/api/v1/web-config")["map"]["tiles_url"] == ""

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, outside, api_reads = watch(page, cloud.api)
        page.goto(cloud.api + "/", wait_until="load")
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Misto" in page.title()
        page.locator("#map-section").wait_for(state="visible", timeout=15_000)
        assert page.locator("#map .leaflet-tile").count() == 0

        # Every public layer in the switcher, its features drawn when it is on, none when off.
        control = page.locator(".leaflet-control-layers-overlays")
        page.locator("#map-status").filter(has_text="public sensor").wait_for(timeout=15_000)
        for name, summary in layers.items():
            label = control.locator("label").filter(has_text=re.compile(rf"^\s*{re.escape(summary['title'])} \("))
            box = label.locator("input")
            if not box.is_checked():
                box.check()
            drawn = page.locator(f"#map path.layer-{name}")
            assert drawn.count() == summary["feature_count"], f"{name}: {drawn.count()} of {summary['feature_count']}"
        districts = control.locator("label").filter(has_text=re.compile(r"^\s*Districts \(")).locator("input")
        districts.uncheck()
        assert page.locator("#map path.layer-districts").count() == 0
        districts.check()
        assert page.locator("#map path[class*='layer-water_network']").count() == 0

        # The public sensor: a marker, reached by keyboard, whose popup shows its live reading.
        marker = page.locator(".sensor-marker[data-device='aq-center-1']")
        marker.wait_for(timeout=15_000)
        assert "aq-center-1" in (marker.get_attribute("aria-label") or "")
        assert marker.get_attribute("role") == "button"
        assert marker.get_attribute("tabindex") == "0"
        marker.focus()
        assert page.evaluate("document.activeElement.dataset.device") == "aq-center-1"
        page.keyboard.press("Enter")
        popup = page.locator(".leaflet-popup .sensor-popup[data-device='aq-center-1']")
        popup.wait_for(timeout=5_000)
        values = sim.values_of(sim.devices[0])
        popup.filter(has_text="µg/m³").wait_for(timeout=10_000)  # the readings come with the table's refresh
        text = popup.inner_text()
        for expected in ("aq-center-1", "Air quality sensor", "Tsentralnyi", "Online", "last seen", "PM2.5", "µg/m³"):
            assert expected in text, f"{expected!r} not in the popup:\n{text}"
        assert any(shown in text for shown in shown_value(values["pm25"])), f"pm25={values['pm25']}:\n{text}"
        page.wait_for_function("() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")
        page.screenshot(path=str(chain.workdir / "public-map.png"), full_page=True)

        # Nothing of the private device: no marker, no row, nowhere in what the page read.
        assert page.locator("[data-device='nm-port-1']").count() == 0
        page.locator("table").filter(has_text="aq-center-1").wait_for(timeout=10_000)
        html = page.content()
        reads = sorted(set(api_reads))
    for trace in PRIVATE_TRACES:
        assert trace not in html, f"{trace!r} on the page"
    assert {"/api/v1/layers", "/api/v1/open-data/devices.geojson", "/api/v1/open-data/device-status"} <= {
        url.removeprefix(cloud.api).split("?")[0] for url in reads
    }, reads
    for url in reads:
        body = anonymous(url)
        json.loads(body)
        for trace in PRIVATE_TRACES:
            assert trace not in body, f"{trace!r} in {url}"
    assert outside == [], outside
    assert errors == [], errors
