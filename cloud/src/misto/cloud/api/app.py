"""The FastAPI application, built by :func:`create_app` (nothing happens at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from misto.cloud import __version__
from misto.cloud.api.routes import auth as auth_routes
from misto.cloud.api.routes import (
    commands,
    dead_letters,
    devices,
    gateway_config,
    gateways,
    health,
    metrics,
    readings,
    registry_bulk,
    registry_status,
    series,
    web,
)
from misto.cloud.api.routes import ingest as ingest_report
from misto.cloud.api.routes import layers as layers_routes
from misto.cloud.api.routes import provisioning as provisioning_routes
from misto.cloud.api.routes import registry as registry_routes
from misto.cloud.api.state import ApiState
from misto.cloud.auth.authenticator import Authenticator
from misto.cloud.control import RemoteControl, open_control
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.registry import RegistryRepository, open_registry
from misto.cloud.settings import CloudSettings
from misto.cloud.storage import open_store
from misto.cloud.storage.base import Store

DESCRIPTION = """\
Readings of Misto's city sensors, as stored by the ingester.

Every endpoint states the roles it admits (admin, operator, technician, partner, citizen; docs/security.md).
Send `Authorization: Bearer <credential>`: a token from `POST /api/v1/auth/token` (people), an API key
`mst_...` (machines, rate-limited per key) or the bootstrap `api.operator_token` (an admin).
Public: `/api/v1/devices`, `/api/v1/readings/latest`, `/api/v1/series`, `/api/v1/gateways`, `/health`.
Operators: `/api/v1/dead-letters`,
`/api/v1/ingest` (ingest counters and refusals per gateway), and remote control of gateways:
`/api/v1/gateways/{gateway}/config` (PUT a new configuration version, GET what the gateway answered)
and `/api/v1/gateways/{gateway}/commands` (POST a command, GET the answers).
The asset registry, `/api/v1/registry/{device-models,gateways,devices}`: anyone reads the public
view of public records; operators read everything, create, update (with the record's `version`),
delete and read each record's audit log.
Prometheus: `/metrics` with `Authorization: Bearer <api.metrics_token>` (or the operator token).
Times are RFC 3339 in UTC; units follow the metric vocabulary of `misto.protocol`.
"""


def create_app(
    settings: CloudSettings,
    *,
    store: Store | None = None,
    ingest: IngestStats | None = None,
    control: RemoteControl | None = None,
    registry: RegistryRepository | None = None,
) -> FastAPI:
    """The API over ``store``, ``control`` and ``registry``; without them, the app
    opens (and closes) the configured store, control database and registry itself in its lifespan,
    and then has no broker link
    (sending configurations and commands answers 503). ``ingest`` is the running ingester's
    counters, shown by ``/health``, ``/api/v1/ingest`` and ``/metrics`` (a registry of this app)."""
    state = ApiState(
        settings=settings,
        store=store,
        ingest=ingest,
        operator_token=settings.api.operator_token_value(),
        control=control,
        registry=registry,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned_store = state.store is None
        owned_control = state.control is None
        owned_registry = state.registry is None
        try:
            if owned_store:
                state.store = await open_store(settings.store)
            if owned_control:
                repository = await open_control(settings)
                state.control = RemoteControl.from_settings(repository, None, settings.control)
            if owned_registry:
                state.registry = await open_registry(settings.registry.database_url(settings.store))
            yield
        finally:
            await state.counts.close()
            if owned_registry and state.registry is not None:
                await state.registry.close()
                state.registry = None
            if owned_control and state.control is not None:
                await state.control.repository.close()
                state.control = None
            if owned_store and state.store is not None:
                await state.store.close()
                state.store = None

    app = FastAPI(title="Misto — city sensors API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.misto = state
    app.state.metrics_registry = metrics.new_registry(state)
    app.state.auth = Authenticator.from_settings(settings.api, lambda: state.registry)  # people, keys, tokens
    app.include_router(auth_routes.router)
    public = (health, devices, readings, series, gateways)
    for module in (
        *public,
        registry_bulk,
        registry_status,
        registry_routes,
        gateway_config,
        commands,
        dead_letters,
        ingest_report,
        metrics,
        web,
    ):
        app.include_router(module.router)
    app.include_router(provisioning_routes.router)
    app.include_router(layers_routes.router)  # /api/v1/layers, /api/v1/geo/*
    app.mount("/static", StaticFiles(directory=web.WEB_DIR), name="static")
    return app
