"""The public page at ``/`` (the citizens' sensor map and the live table): static HTML, CSS and
vanilla JS from ``misto/cloud/web``, with Leaflet vendored under ``web/vendor/leaflet`` (no build
step, nothing from a CDN), and ``GET /api/v1/web-config``, the page's settings (base tiles).

The page reads only public endpoints; the server decides what they show (docs/geospatial.md#the-public-map).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from misto.cloud.api.access import PUBLIC
from misto.cloud.api.deps import StateDep
from misto.cloud.settings import ApiSettings

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
#: Where the map opens before the data is in: the centre of Kherson.
KHERSON = (46.64, 32.61)
DEFAULT_ZOOM = 13

router = APIRouter(dependencies=[PUBLIC])


def tile_source(tiles_url: str) -> str | None:
    """The Content-Security-Policy source admitting the map tiles: None when there are none or
    they come from this server; ``{s}.`` subdomains become ``*.``; any other template in the host
    admits its scheme (the settings refuse spaces, quotes, ``;`` and ``,``)."""
    parts = urlsplit(tiles_url)
    if not parts.netloc:
        return None
    host = parts.netloc.replace("{s}.", "*.", 1) if parts.netloc.startswith("{s}.") else parts.netloc
    return f"{parts.scheme}:" if "{" in host else f"{parts.scheme}://{host}"


def page_headers(api: ApiSettings) -> dict[str, str]:
    """The page loads nothing from elsewhere but the base tiles: say so to the browser."""
    images = " ".join(filter(None, ("'self'", "data:", tile_source(api.map_tiles_url))))
    return {
        "Content-Security-Policy": f"default-src 'self'; img-src {images}; frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


class MapCentre(BaseModel):
    model_config = ConfigDict(frozen=True)

    lat: float
    lon: float


class MapConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    tiles_url: str  # a Leaflet URL template; "" for no base tiles
    attribution: str  # HTML
    centre: MapCentre  # before the data is in
    zoom: int


class WebConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    map: MapConfig


def api_settings(state: StateDep) -> ApiSettings:
    return state.settings.api


ApiSettingsDep = Annotated[ApiSettings, Depends(api_settings)]


@router.get("/", include_in_schema=False)
async def index(api: ApiSettingsDep) -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=page_headers(api))


@router.get(
    "/api/v1/web-config", response_model=WebConfig, tags=["web"], summary="Settings of the public page: base tiles"
)
async def web_config(api: ApiSettingsDep) -> WebConfig:
    return WebConfig(
        map=MapConfig(
            tiles_url=api.map_tiles_url,
            attribution=api.map_attribution if api.map_tiles_url else "",
            centre=MapCentre(lat=KHERSON[0], lon=KHERSON[1]),
            zoom=DEFAULT_ZOOM,
        )
    )
