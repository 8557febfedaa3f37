"""The public page's settings: ``GET /api/v1/web-config``, the page's Content-Security-Policy (which
admits the configured base tiles and nothing else from elsewhere), the vendored Leaflet, and the
checks on ``api.map_tiles_url``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.tests.test_api import client_for
from misto.cloud.api import create_app
from misto.cloud.api.routes.web import WEB_DIR
from misto.cloud.errors import ConfigError
from misto.cloud.settings import ApiSettings, load_settings

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


@asynccontextmanager
async def page(tmp_path: Path, **api: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(overrides={"api": api, "store": {"path": str(tmp_path / "misto.db")}})
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield client


def csp(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in policy.split("; ")}


@pytest.mark.parametrize(
    ("tiles", "img_src"),
    [
        (OSM, "'self' data: https://tile.openstreetmap.org"),
        ("https://{s}.tiles.example.org:8443/osm/{z}/{x}/{y}.png", "'self' data: https://*.tiles.example.org:8443"),
        ("https://tiles-{s}.example.org/{z}/{x}/{y}.png", "'self' data: https:"),
        ("/tiles/{z}/{x}/{y}.png", "'self' data:"),
        ("", "'self' data:"),
    ],
)
async def test_the_page_admits_the_configured_tiles_and_nothing_else(tmp_path: Path, tiles: str, img_src: str) -> None:
    async with page(tmp_path, map_tiles_url=tiles) as client:
        response = await client.get("/")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert csp(response) == {"default-src": "'self'", "img-src": img_src, "frame-ancestors": "'none'"}
        assert response.headers["x-content-type-options"] == "nosniff"
        config = (await client.get("/api/v1/web-config")).json()["map"]
        assert config["tiles_url"] == tiles
        assert bool(config["attribution"]) == bool(tiles)  # no tiles: nothing to attribute
        assert config["centre"] == {"lat": 46.64, "lon": 32.61}


async def test_the_defaults_are_openstreetmap_with_its_attribution(tmp_path: Path) -> None:
    async with page(tmp_path) as client:
        config = (await client.get("/api/v1/web-config")).json()["map"]
        assert config["tiles_url"] == OSM
        assert "OpenStreetMap" in config["attribution"]
        assert "openstreetmap.org/copyright" in config["attribution"]
        spec = (await client.get("/openapi.json")).json()
        assert "/api/v1/web-config" in spec["paths"]
        assert "/" not in spec["paths"]


async def test_the_page_and_leaflet_are_served_from_this_server(tmp_path: Path) -> None:
    async with page(tmp_path, map_tiles_url="") as client:
        html = (await client.get("/")).text
        for asset in (
            "vendor/leaflet/leaflet.js",
            "vendor/leaflet/leaflet.css",
            "vendor/leaflet/images/layers.png",
            "vendor/leaflet/images/marker-icon.png",
            "map.js",
            "format.js",
            "app.js",
            "style.css",
        ):
            response = await client.get(f"/static/{asset}")
            assert response.status_code == 200, asset
        assert "/static/vendor/leaflet/leaflet.js" in html
        assert "http" not in html.split("<body>")[0], "the head loads something from elsewhere"
        leaflet = (WEB_DIR / "vendor" / "leaflet" / "leaflet.js").read_text(encoding="utf-8")
        assert 't.version="1.9.4"' in leaflet
        assert "BSD 2-Clause" in (WEB_DIR / "vendor" / "leaflet" / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("tiles", "message"),
    [
        ("ftp://tiles.example.org/{z}/{x}/{y}.png", "an http(s) URL or a path on this server"),
        ("tiles/{z}/{x}/{y}.png", "an http(s) URL or a path on this server"),
        ("https://tiles.example.org/{z}/{x}/{y}.png; script-src *", "no spaces"),
        ("https://user@tiles.example.org/{z}/{x}/{y}.png", "an http(s) URL"),
        ("https://tiles.example.org/{z}/{x}.png", "lacks {y}"),
    ],
)
def test_a_bad_tiles_url_is_refused_naming_the_key(tiles: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides={"api": {"map_tiles_url": tiles}})
    assert "api.map_tiles_url" in str(caught.value)
    assert message in str(caught.value)


def test_an_empty_tiles_url_means_no_tiles() -> None:
    assert ApiSettings(map_tiles_url="").map_tiles_url == ""
