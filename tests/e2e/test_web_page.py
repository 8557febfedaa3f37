"""The public live-sensors page in headless Chromium, fed by the real chain."""

from __future__ import annotations

import pytest

from tests.fixtures.browser import chromium
from tests.fixtures.chain import Chain
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import wait_until

pytestmark = pytest.mark.e2e


def test_live_page_lists_every_device_with_values_and_units(
    chain: Chain, mosquitto: BrokerInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISTO_API__MAP_TILES_URL", "")  # no base tiles: nothing leaves loopback
    sim = chain.simulator({"aq-center-1": "aq1", "nm-port-1": "nm1"})
    cloud = chain.cloud()
    chain.agent(sim)
    wait_until(lambda: len(cloud.get("/api/v1/devices")) == 2, deadline_s=20, what="both devices at the API")

    errors: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("requestfailed", lambda r: errors.append(f"failed: {r.url} {r.failure}"))
        page.goto(cloud.api + "/", wait_until="load")
        assert page.locator("html").get_attribute("lang")
        assert "Misto" in page.title()
        table = page.locator("table")
        table.filter(has_text="nm-port-1").wait_for(timeout=15_000)
        text = table.inner_text()
        for expected in ("aq-center-1", "nm-port-1", "pm25", "LAeq", "ug/m3", "dB(A)"):
            assert expected in text, f"{expected!r} not on the page:\n{text}"
        pm25 = sim.values_of(sim.devices[0])["pm25"]
        assert f"{pm25:g}" in text or f"{pm25:.1f}" in text, f"pm25={pm25} not shown:\n{text}"
        page.screenshot(path=str(chain.workdir / "live-page.png"), full_page=True)
    assert errors == [], errors
