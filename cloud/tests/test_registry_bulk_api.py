"""Bulk import and export through the HTTP API and the CLI, over a real SQLite registry: reports
with 200/422, 4xx (never 500) for garbage, the open-data export, and ``misto-cloud registry``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cloud.tests.test_api import AUTH, TOKEN, client_for
from cloud.tests.test_registry_bulk import SAMPLE, seed
from cloud.tests.test_registry_bulk_entities import GATEWAYS_SAMPLE, MODELS_SAMPLE
from misto.cloud.api import create_app
from misto.cloud.cli import app as cli
from misto.cloud.registry.bulk import MAX_BYTES
from misto.cloud.registry.models import AuditAction, Entity
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import load_settings

IMPORT = "/api/v1/registry/devices/import"
EXPORT = "/api/v1/registry/devices/export"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SqlRegistry]]:
    registry = await SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    await seed(registry)
    settings = load_settings(overrides={"api": {"operator_token": TOKEN}, "store": {"path": str(tmp_path / "m.db")}})
    app = create_app(settings, registry=registry)
    try:
        async with app.router.lifespan_context(app), client_for(app) as client:
            yield client, registry
    finally:
        await registry.close()


async def test_dry_run_then_import_then_export(api: tuple[httpx.AsyncClient, SqlRegistry]) -> None:
    client, registry = api
    body = SAMPLE.read_bytes()
    dry = await client.post(IMPORT, params={"format": "csv", "dry_run": "true"}, content=body, headers=AUTH)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["outcome"], dry.json()["created"]) == ("validated", 3)
    assert (await registry.list_devices()).items == ()
    done = await client.post(IMPORT, params={"format": "csv"}, content=body, headers=AUTH)
    assert done.json()["outcome"] == "imported"
    [entry] = await registry.audit(Entity.DEVICE, "aq-101")
    assert entry.action is AuditAction.CREATE
    assert "operator" in entry.actor  # the caller's subject (the bootstrap operator token)
    exported = await client.get(EXPORT, params={"format": "geojson"}, headers=AUTH)
    assert exported.headers["content-type"] == "application/geo+json"
    assert exported.headers["content-disposition"] == 'attachment; filename="devices.geojson"'
    again = await client.post(
        IMPORT, params={"format": "geojson", "mode": "upsert"}, content=exported.content, headers=AUTH
    )
    assert (again.status_code, again.json()["unchanged"]) == (200, 3)
    csv_export = await client.get(EXPORT, headers=AUTH)
    assert csv_export.headers["content-type"] == "text/csv; charset=utf-8"
    assert next(csv.reader(io.StringIO(csv_export.text)))[0] == "id"


async def test_bad_rows_are_422_with_every_error(api: tuple[httpx.AsyncClient, SqlRegistry]) -> None:
    client, registry = api
    text = (
        "id,gateway_id,model_id,organisation,lat,lon\n"
        "aq-1,gw-kherson-001,aq1,City,46.6,32.6\n"
        "aq-2,gw-x,aq1,City,91,32.6\n"
    )
    response = await client.post(IMPORT, params={"format": "csv", "mode": "create"}, content=text, headers=AUTH)
    assert response.status_code == 422
    assert [e["text"] for e in response.json()["errors"]] == [
        "row 3 (device aq-2), lat: Input should be less than or equal to 90"
    ]
    assert (await registry.list_devices()).items == ()  # the good row was not written either


async def test_access(api: tuple[httpx.AsyncClient, SqlRegistry]) -> None:
    client, _ = api
    assert (await client.post(IMPORT, params={"format": "csv"}, content=b"id\n")).status_code == 401
    assert (await client.get(EXPORT)).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token-at-all-0000"}
    assert (await client.get(EXPORT, headers=wrong)).status_code in {401, 403}
    await client.post(IMPORT, params={"format": "csv"}, content=SAMPLE.read_bytes(), headers=AUTH)
    public = await client.get("/api/v1/open-data/devices.geojson")
    assert public.status_code == 200
    assert [f["id"] for f in public.json()["features"]] == ["aq-101", "nm-201"]
    assert "owner_contact" not in public.json()["features"][0]["properties"]
    public_csv = await client.get("/api/v1/open-data/devices.csv")
    assert public_csv.text.splitlines()[0] == (
        "id,gateway_id,model_id,kind,install_date,lon,lat,district,organisation,visibility,status"
    )


async def test_garbage_is_4xx(api: tuple[httpx.AsyncClient, SqlRegistry]) -> None:
    client, _ = api
    for params in ({"format": "xml"}, {"format": "csv", "mode": "merge"}, {"format": "csv", "dry_run": "perhaps"}, {}):
        response = await client.post(IMPORT, params=params, content=b"id\n", headers=AUTH)
        assert response.status_code == 422, params
    too_big = await client.post(IMPORT, params={"format": "csv"}, content=b"x" * (MAX_BYTES + 1), headers=AUTH)
    assert too_big.status_code == 413
    for junk in (b"\xff\xfe\x00", b'{"type": "FeatureCollection"', b"", b"id\n" + b"\x00" * 10):
        for fmt in ("csv", "geojson"):
            response = await client.post(IMPORT, params={"format": fmt}, content=junk, headers=AUTH)
            assert response.status_code == 422, (fmt, junk, response.text)
            assert response.json()["errors"], junk


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    body=st.binary(max_size=300), fmt=st.sampled_from(["csv", "geojson"]), mode=st.sampled_from(["create", "upsert"])
)
def test_fuzzed_bodies_never_500(tmp_path: Path, body: bytes, fmt: str, mode: str) -> None:
    async def run() -> None:
        registry = await SqlRegistry.open(f"sqlite:///{tmp_path / 'fuzz.db'}")
        settings_ = load_settings(
            overrides={"api": {"operator_token": TOKEN}, "store": {"path": str(tmp_path / "m.db")}}
        )
        app = create_app(settings_, registry=registry)
        try:
            async with app.router.lifespan_context(app), client_for(app) as client:
                response = await client.post(
                    IMPORT, params={"format": fmt, "mode": mode, "dry_run": "true"}, content=body, headers=AUTH
                )
                assert response.status_code in {200, 422}, response.text
        finally:
            await registry.close()

    asyncio.run(run())


# --- CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("MISTO_"):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'registry.db'}"

    async def prepare() -> None:
        async with await SqlRegistry.open(url) as registry:
            await seed(registry)

    asyncio.run(prepare())
    path = tmp_path / "cloud.yaml"
    path.write_text(f"store:\n  path: {tmp_path / 'misto.db'}\nregistry:\n  url: {url}\n", encoding="utf-8")
    return path


def test_cli_dry_run_prints_every_bad_row_and_fails(tmp_path: Path, config: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,gateway_id,model_id,organisation\naq-1,gw-x,aq1,City\naq-2,gw-kherson-001,zz,City\n", encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["registry", "import", str(bad), "--dry-run", "--config", str(config)])
    assert result.exit_code == 1
    assert f"{bad}: row 2 (device aq-1), gateway_id: gateway 'gw-x' not found" in result.output
    assert f"{bad}: row 3 (device aq-2), model_id: device model 'zz' not found" in result.output


def test_cli_import_and_export_round_trip(tmp_path: Path, config: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["registry", "import", str(SAMPLE), "--config", str(config), "--actor", "user:olena"])
    assert result.exit_code == 0, result.output
    assert "imported: 3 created, 0 updated, 0 unchanged" in result.output
    out = tmp_path / "devices.geojson"
    result = runner.invoke(cli, ["registry", "export", "-o", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert [f["id"] for f in json.loads(out.read_text(encoding="utf-8"))["features"]] == ["aq-101", "aq-102", "nm-201"]
    result = runner.invoke(cli, ["registry", "import", str(out), "--mode", "upsert", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "0 created, 0 updated, 3 unchanged" in result.output
    result = runner.invoke(cli, ["registry", "export", "--format", "csv", "--public", "--config", str(config)])
    assert result.exit_code == 0
    assert result.output.splitlines()[1].startswith("aq-101,gw-kherson-001,aq1,air,2026-03-14,32.6169,46.6354")


# --- gateways and device models ----------------------------------------------------------------


async def test_gateways_and_models_through_the_api(api: tuple[httpx.AsyncClient, SqlRegistry]) -> None:
    client, registry = api
    await registry.delete_gateway("gw-kherson-001", actor="test")
    gateways = GATEWAYS_SAMPLE.read_bytes()
    route = "/api/v1/registry/gateways"
    bad = await client.post(f"{route}/import", params={"format": "csv"}, content=gateways, headers=AUTH)
    assert bad.status_code == 422
    assert [(e["where"], e["record"], e["field"]) for e in bad.json()["errors"]] == [
        ("row 3", "gw-kherson-002", "id")
    ]  # seeded already: every row is refused, the good one is not written either
    assert [g.id for g in (await registry.list_gateways()).items] == ["gw-kherson-002"]
    done = await client.post(
        f"{route}/import", params={"format": "csv", "mode": "upsert"}, content=gateways, headers=AUTH
    )
    assert (done.status_code, done.json()["entity"], done.json()["created"], done.json()["updated"]) == (
        200,
        "gateways",
        1,
        1,
    )
    [entry, *_] = await registry.audit(Entity.GATEWAY, "gw-kherson-002")
    assert (entry.action, "operator" in entry.actor) == (AuditAction.UPDATE, True)
    exported = await client.get(f"{route}/export", params={"format": "geojson"}, headers=AUTH)
    assert exported.headers["content-disposition"] == 'attachment; filename="gateways.geojson"'
    again = await client.post(
        f"{route}/import", params={"format": "geojson", "mode": "upsert"}, content=exported.content, headers=AUTH
    )
    assert (again.status_code, again.json()["unchanged"]) == (200, 2)
    public = await client.get("/api/v1/open-data/gateways.geojson")
    assert [f["id"] for f in public.json()["features"]] == ["gw-kherson-001"]
    assert "caretaker" not in public.text
    assert (await client.get("/api/v1/open-data/gateways.csv")).text.splitlines()[1].startswith("gw-kherson-001,")

    models = "/api/v1/registry/device-models"
    body = b"id,kind,manufacturer,name,metrics\ntm1,traffic,Acme,TM-1,vehicleCount;averageVehicleSpeed\n"
    created = await client.post(f"{models}/import", params={"format": "csv"}, content=body, headers=AUTH)
    assert (created.status_code, created.json()["created"]) == (200, 1)
    geo = await client.post(f"{models}/import", params={"format": "geojson"}, content=b"{}", headers=AUTH)
    assert geo.status_code == 422
    assert geo.json()["errors"][0]["text"] == (
        "file, format: device models have no location, so no GeoJSON: import them as CSV"
    )
    no_geo = await client.get(f"{models}/export", params={"format": "geojson"}, headers=AUTH)
    assert (no_geo.status_code, no_geo.json()["detail"]) == (
        422,
        "format: device models have no location, so no geojson: use csv",
    )
    catalogue = await client.get("/api/v1/open-data/device-models.csv")
    assert catalogue.text.splitlines()[-1] == "tm1,traffic,Acme,TM-1,,vehicleCount;averageVehicleSpeed"
    assert (await client.get("/api/v1/open-data/device-models.geojson")).status_code == 404
    for path in (f"{route}/export", f"{models}/export"):
        assert (await client.get(path)).status_code == 401
    assert (await client.post(f"{models}/import", params={"format": "csv"}, content=body)).status_code == 401


def test_cli_imports_a_whole_city_in_order(tmp_path: Path, config: Path) -> None:
    runner = CliRunner()
    base = ["registry", "import", "--config", str(config), "--mode", "upsert"]
    for entity, sample, summary in (
        ("device-models", MODELS_SAMPLE, "0 created, 2 updated, 0 unchanged"),  # seeded with other names
        ("gateways", GATEWAYS_SAMPLE, "0 created, 2 updated, 0 unchanged"),
        ("devices", SAMPLE, "3 created, 0 updated, 0 unchanged"),
    ):
        result = runner.invoke(cli, [*base, "--entity", entity, str(sample), "--dry-run"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(cli, [*base, "--entity", entity, str(sample)])
        assert result.exit_code == 0, result.output
        rows = len(sample.read_text(encoding="utf-8").splitlines()) - 1
        assert f"imported: {summary} ({rows} {entity}, csv, mode upsert)" in result.output
    out = tmp_path / "gateways.geojson"
    result = runner.invoke(cli, ["registry", "export", "-e", "gateways", "-o", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert [f["id"] for f in json.loads(out.read_text(encoding="utf-8"))["features"]] == [
        "gw-kherson-001",
        "gw-kherson-002",
    ]
    result = runner.invoke(cli, ["registry", "export", "-e", "device-models", "-f", "geojson", "--config", str(config)])
    assert result.exit_code == 2
    assert "device models have no location, so no geojson: use csv" in result.output
