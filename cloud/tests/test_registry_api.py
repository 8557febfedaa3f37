"""The registry's HTTP API over a real SQLite registry, through httpx's ASGI transport: the public
view without a token, everything with the operator token, and errors naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cloud.tests.test_api import AUTH, TOKEN, client_for
from misto.cloud.api import create_app
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import load_settings

BASE = "/api/v1/registry"
MODEL = {"id": "aq1", "kind": "air", "manufacturer": "Acme", "name": "AQ-1", "metrics": ["pm25"]}
GATEWAY = {"id": "gw-1", "name": "Gateway 1", "organisation": "City", "district": "Centre", "visibility": "public"}
PRIVATE_GATEWAY = {"id": "gw-2", "name": "Gateway 2", "organisation": "City", "owner_contact": "ops@city"}
DEVICE = {
    "id": "aq-1",
    "gateway_id": "gw-1",
    "model_id": "aq1",
    "organisation": "City",
    "owner_contact": "ops@city",
    "notes": "on the school roof",
    "location": {"lon": 32.6, "lat": 46.6},
    "district": "Centre",
    "visibility": "public",
}
PRIVATE_DEVICE = {**DEVICE, "id": "aq-2", "visibility": "private"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        overrides={"api": {"operator_token": TOKEN}, "store": {"path": str(tmp_path / "misto.db")}}
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield client
    assert (tmp_path / "misto-registry.db").exists()  # the default: beside the store


async def seeded(api: httpx.AsyncClient) -> None:
    for path, body in (
        ("device-models", MODEL),
        ("gateways", GATEWAY),
        ("gateways", PRIVATE_GATEWAY),
        ("devices", DEVICE),
        ("devices", PRIVATE_DEVICE),
    ):
        response = await api.post(f"{BASE}/{path}", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        assert response.headers["location"] == f"{BASE}/{path}/{body['id']}"


def field_error(response: httpx.Response, *loc: str) -> str:
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert tuple(error["loc"]) == loc, error
    message: str = error["msg"]
    return message


async def test_create_and_read_with_the_token(api: httpx.AsyncClient) -> None:
    await seeded(api)
    device = (await api.get(f"{BASE}/devices/aq-1", headers=AUTH)).json()
    assert device["owner_contact"] == "ops@city"
    assert device["notes"] == "on the school roof"
    assert device["kind"] == "air"  # the model's
    assert device["version"] == 1
    listing = (await api.get(f"{BASE}/devices", headers=AUTH)).json()
    assert [d["id"] for d in listing["items"]] == ["aq-1", "aq-2"]
    assert listing["next_after"] is None
    gateways = (await api.get(f"{BASE}/gateways", headers=AUTH)).json()
    assert [g["id"] for g in gateways["items"]] == ["gw-1", "gw-2"]
    model = (await api.get(f"{BASE}/device-models/aq1", headers=AUTH)).json()
    assert (model["manufacturer"], model["version"]) == ("Acme", 1)


async def test_public_view_hides_private_records_and_fields(api: httpx.AsyncClient) -> None:
    await seeded(api)
    listing = (await api.get(f"{BASE}/devices")).json()
    assert [d["id"] for d in listing["items"]] == ["aq-1"]
    [device] = listing["items"]
    assert not {"owner_contact", "notes", "version", "created_at"} & set(device)
    assert device["location"] == {"lon": 32.6, "lat": 46.6}
    one = await api.get(f"{BASE}/devices/aq-1")
    assert one.status_code == 200
    assert "owner_contact" not in one.json()
    hidden = await api.get(f"{BASE}/devices/aq-2")
    assert hidden.status_code == 404
    assert "'aq-2'" in hidden.json()["detail"]
    gateways = (await api.get(f"{BASE}/gateways")).json()
    assert [g["id"] for g in gateways["items"]] == ["gw-1"]
    assert (await api.get(f"{BASE}/gateways/gw-2")).status_code == 404
    models = (await api.get(f"{BASE}/device-models")).json()
    assert models["items"] == [
        {k: MODEL[k] for k in ("id", "kind", "manufacturer", "name", "metrics")} | {"profile": None}
    ]
    assert "version" not in (await api.get(f"{BASE}/device-models/aq1")).json()
    wrong = await api.get(f"{BASE}/devices", headers={"Authorization": "Bearer not-the-operator-token"})
    assert wrong.status_code == 401


async def test_filters_and_pagination(api: httpx.AsyncClient) -> None:
    await seeded(api)
    first = (await api.get(f"{BASE}/devices", params={"limit": 1}, headers=AUTH)).json()
    assert ([d["id"] for d in first["items"]], first["next_after"]) == (["aq-1"], "aq-1")
    second = (await api.get(f"{BASE}/devices", params={"limit": 1, "after": "aq-1"}, headers=AUTH)).json()
    assert ([d["id"] for d in second["items"]], second["next_after"]) == (["aq-2"], None)
    by_gateway = (await api.get(f"{BASE}/devices", params={"gateway": "gw-9"}, headers=AUTH)).json()
    assert by_gateway["items"] == []
    by_kind = (await api.get(f"{BASE}/devices", params={"kind": "noise"}, headers=AUTH)).json()
    assert by_kind["items"] == []
    by_district = (await api.get(f"{BASE}/gateways", params={"district": "Centre"}, headers=AUTH)).json()
    assert [g["id"] for g in by_district["items"]] == ["gw-1"]
    models = (await api.get(f"{BASE}/device-models", params={"kind": "air"})).json()
    assert [m["id"] for m in models["items"]] == ["aq1"]
    field_error(await api.get(f"{BASE}/devices", params={"limit": 0}), "query", "limit")


async def test_writes_need_the_operator_token(api: httpx.AsyncClient) -> None:
    await seeded(api)
    for method, path, body in (
        ("POST", "gateways", GATEWAY),
        ("PATCH", "gateways/gw-1", {"version": 1, "name": "x"}),
        ("DELETE", "devices/aq-1", None),
        ("GET", "devices/aq-1/audit", None),
        ("GET", "gateways/gw-1/audit", None),
        ("GET", "device-models/aq1/audit", None),
    ):
        response = await api.request(method, f"{BASE}/{path}", json=body)
        assert response.status_code == 401, (method, path, response.text)
        wrong = await api.request(method, f"{BASE}/{path}", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, (method, path)


async def test_update_with_version_and_audit(api: httpx.AsyncClient) -> None:
    await seeded(api)
    changed = await api.patch(
        f"{BASE}/gateways/gw-1", json={"version": 1, "name": "Renamed", "district": None}, headers=AUTH
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["district"], changed.json()["version"]) == ("Renamed", None, 2)
    stale = await api.patch(f"{BASE}/gateways/gw-1", json={"version": 1, "name": "Again"}, headers=AUTH)
    assert stale.status_code == 409
    assert "version 2, not 1" in stale.json()["detail"]
    field_error(await api.patch(f"{BASE}/gateways/gw-1", json={"name": "x"}, headers=AUTH), "body", "version")
    cleared = await api.patch(f"{BASE}/gateways/gw-1", json={"version": 2, "name": None}, headers=AUTH)
    assert "not cleared" in field_error(cleared, "body", "name")
    missing = await api.patch(f"{BASE}/devices/aq-9", json={"version": 1, "notes": "x"}, headers=AUTH)
    assert missing.status_code == 404
    assert "'aq-9'" in missing.json()["detail"]
    model = await api.patch(f"{BASE}/device-models/aq1", json={"version": 1, "name": "AQ-1b"}, headers=AUTH)
    assert model.json()["version"] == 2
    device = await api.patch(f"{BASE}/devices/aq-1", json={"version": 1, "status": "maintenance"}, headers=AUTH)
    assert device.json()["status"] == "maintenance"
    audit = (await api.get(f"{BASE}/gateways/gw-1/audit", headers=AUTH)).json()
    assert [(e["action"], e["actor"]) for e in audit] == [("update", "operator"), ("create", "operator")]
    assert audit[0]["before"]["name"] == "Gateway 1"
    assert audit[0]["after"]["name"] == "Renamed"
    assert len((await api.get(f"{BASE}/device-models/aq1/audit", headers=AUTH)).json()) == 2
    assert len((await api.get(f"{BASE}/devices/aq-1/audit", headers=AUTH)).json()) == 2


async def test_create_errors_name_the_field(api: httpx.AsyncClient) -> None:
    await seeded(api)
    duplicate = await api.post(f"{BASE}/gateways", json=GATEWAY, headers=AUTH)
    assert duplicate.status_code == 409
    assert "'gw-1' already exists" in duplicate.json()["detail"]
    unknown = await api.post(f"{BASE}/devices", json={**DEVICE, "id": "aq-3", "gateway_id": "gw-9"}, headers=AUTH)
    assert "'gw-9' not found" in field_error(unknown, "body", "gateway_id")
    bad_id = await api.post(f"{BASE}/gateways", json={**GATEWAY, "id": "GW 1"}, headers=AUTH)
    field_error(bad_id, "body", "id")
    no_org = {k: v for k, v in GATEWAY.items() if k != "organisation"} | {"id": "gw-3"}
    field_error(await api.post(f"{BASE}/gateways", json=no_org, headers=AUTH), "body", "organisation")
    bad_lat = await api.post(
        f"{BASE}/devices", json={**DEVICE, "id": "aq-3", "location": {"lon": 0, "lat": 91}}, headers=AUTH
    )
    field_error(bad_lat, "body", "location", "lat")
    wrong_kind = await api.post(f"{BASE}/devices", json={**DEVICE, "id": "aq-3", "kind": "noise"}, headers=AUTH)
    assert "aq1" in field_error(wrong_kind, "body", "kind")


async def test_delete(api: httpx.AsyncClient) -> None:
    await seeded(api)
    in_use = await api.delete(f"{BASE}/gateways/gw-1", headers=AUTH)
    assert in_use.status_code == 409
    assert "still referenced by 2 device" in in_use.json()["detail"]
    assert (await api.delete(f"{BASE}/device-models/aq1", headers=AUTH)).status_code == 409
    stale = await api.delete(f"{BASE}/devices/aq-1", params={"version": 5}, headers=AUTH)
    assert stale.status_code == 409
    for device in ("aq-1", "aq-2"):
        assert (await api.delete(f"{BASE}/devices/{device}", params={"version": 1}, headers=AUTH)).status_code == 204
    assert (await api.delete(f"{BASE}/gateways/gw-1", headers=AUTH)).status_code == 204
    assert (await api.delete(f"{BASE}/device-models/aq1", headers=AUTH)).status_code == 204
    gone = await api.get(f"{BASE}/gateways/gw-1", headers=AUTH)
    assert gone.status_code == 404
    assert "'gw-1'" in gone.json()["detail"]
    audit = (await api.get(f"{BASE}/devices/aq-1/audit", headers=AUTH)).json()
    assert [e["action"] for e in audit] == ["delete", "create"]
    assert (await api.delete(f"{BASE}/devices/aq-1", headers=AUTH)).status_code == 404


async def test_a_given_registry_is_used_and_left_open(tmp_path: Path) -> None:
    registry = await SqlRegistry.open(f"sqlite:///{tmp_path / 'own-registry.db'}")
    try:
        settings = load_settings(overrides={"store": {"path": str(tmp_path / "misto.db")}})
        app = create_app(settings, registry=registry)
        async with app.router.lifespan_context(app), client_for(app) as client:
            assert (await client.get(f"{BASE}/gateways")).json() == {"items": [], "next_after": None}
        await registry.ping()  # still open: the app did not own it
    finally:
        await registry.close()
    assert not (tmp_path / "misto-registry.db").exists()
