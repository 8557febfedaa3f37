"""The FastAPI application, built by :func:`create_app` (nothing happens at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from misto.cloud import __version__
from misto.cloud.api.routes import dead_letters, devices, gateways, health, readings, series, web
from misto.cloud.api.state import ApiState
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.settings import CloudSettings
from misto.cloud.storage import open_store
from misto.cloud.storage.base import Store

DESCRIPTION = """\
Readings of Misto's city sensors, as stored by the ingester.

Public: `/api/v1/devices`, `/api/v1/readings/latest`, `/api/v1/series`, `/api/v1/gateways`, `/health`.
Operators: `/api/v1/dead-letters` with `Authorization: Bearer <api.operator_token>`.
Times are RFC 3339 in UTC; units follow the metric vocabulary of `misto.protocol`.
"""


def create_app(settings: CloudSettings, *, store: Store | None = None, ingest: IngestStats | None = None) -> FastAPI:
    """The API over ``store``; without one, the app opens (and closes) the configured store itself
    in its lifespan. ``ingest`` is the running ingester's counters, shown by ``/health``."""
    state = ApiState(settings=settings, store=store, ingest=ingest, operator_token=settings.api.operator_token_value())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned = state.store is None
        if owned:
            state.store = await open_store(settings.store)
        try:
            yield
        finally:
            if owned and state.store is not None:
                await state.store.close()
                state.store = None

    app = FastAPI(title="Misto — city sensors API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.misto = state
    for module in (health, devices, readings, series, gateways, dead_letters, web):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=web.WEB_DIR), name="static")
    return app
