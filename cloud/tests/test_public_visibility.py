"""Public telemetry shows only what may be public: a device the registry marks private is hidden
from anonymous callers on /api/v1/devices, /readings/latest, /series and /series/list (its series
answers as one without data), while staff see everything; with ``api.public_devices:
registered_public`` only registered public devices show."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.tests.support import T0
from cloud.tests.test_api import AUTH, TOKEN, client_for
from cloud.tests.test_registry_api import DEVICE, GATEWAY, MODEL
from misto.cloud.api import create_app
from misto.cloud.settings import load_settings
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol.messages import Reading

PRIVATE = {**DEVICE, "id": "aq-private", "visibility": "private"}
PUBLIC = {**DEVICE, "id": "aq-public", "visibility": "public"}
UNREGISTERED = "aq-unregistered"
ALL = {"aq-private", "aq-public", UNREGISTERED}


async def _client(tmp_path: Path, mode: str) -> AsyncIterator[httpx.AsyncClient]:
    store_path = tmp_path / "misto.db"
    store = await SqliteStore.open(store_path)
    try:
        await store.write_batch(
            "gw-1:b:1", "gw-1", [Reading(device, "pm25", 10.0, "ug/m3", T0) for device in sorted(ALL)]
        )
    finally:
        await store.close()
    settings = load_settings(
        overrides={"api": {"operator_token": TOKEN, "public_devices": mode}, "store": {"path": str(store_path)}}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as client:
        for path, body in (("device-models", MODEL), ("gateways", GATEWAY), ("devices", PRIVATE), ("devices", PUBLIC)):
            response = await client.post(f"/api/v1/registry/{path}", json=body, headers=AUTH)
            assert response.status_code == 201, response.text
        yield client


@pytest.fixture
async def not_private(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, "not_private"):
        yield client


@pytest.fixture
async def registered_public(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path, "registered_public"):
        yield client


async def _seen(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, set[str]]:
    async def get(path: str, **params: Any) -> Any:
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    series = {}
    for device in sorted(ALL):
        response = await client.get(
            "/api/v1/series",
            params={
                "device": device,
                "metric": "pm25",
                "from": T0.isoformat(),
                "to": (T0 + timedelta(hours=1)).isoformat(),
            },
            headers=headers,
        )
        assert response.status_code in {200, 404}, response.text
        series[device] = response.status_code
    return {
        "devices": {d["device"] for d in await get("/api/v1/devices")},
        "latest": {r["device"] for r in await get("/api/v1/readings/latest")},
        "series_list": {s["device"] for s in await get("/api/v1/series/list")},
        "series": {device for device, code in series.items() if code == 200},
    }


async def test_a_private_device_is_hidden_from_the_public_only(not_private: httpx.AsyncClient) -> None:
    anonymous = await _seen(not_private, {})
    assert all(seen == {"aq-public", UNREGISTERED} for seen in anonymous.values()), anonymous
    staff = await _seen(not_private, AUTH)
    assert all(seen == ALL for seen in staff.values()), staff


async def test_registered_public_shows_only_registered_public_devices(registered_public: httpx.AsyncClient) -> None:
    anonymous = await _seen(registered_public, {})
    assert all(seen == {"aq-public"} for seen in anonymous.values()), anonymous
    staff = await _seen(registered_public, AUTH)
    assert all(seen == ALL for seen in staff.values()), staff
