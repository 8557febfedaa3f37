"""The public page at ``/``: static HTML, CSS and vanilla JS from ``misto/cloud/web`` (no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from misto.cloud.api.access import PUBLIC

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
#: The page loads nothing from elsewhere; say so to the browser.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False, dependencies=[PUBLIC])


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
