"""Bulk import and export of gateways (CSV, GeoJSON) and device models (CSV; GeoJSON refused),
through the same machinery as devices: a whole city imported in order (models, gateways, devices)
from the sample files, every bad row named, all or nothing, audited, spreadsheet-safe, and export ->
import changing nothing, on SQLite and on PostgreSQL + PostGIS."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud.tests.test_registry_bulk import SAMPLE as DEVICES_SAMPLE
from misto.cloud.registry.bulk import BulkFormat, Parsed, UnsupportedFormatError, parse_csv, parse_geojson
from misto.cloud.registry.bulk_apply import ImportMode, ImportReport, Outcome, export_records, import_records
from misto.cloud.registry.bulk_entities import (
    DEVICE_MODELS,
    DEVICES,
    ENTITIES,
    GATEWAYS,
    BulkEntity,
    all_gateways,
    all_models,
)
from misto.cloud.registry.errors import AlreadyExistsError
from misto.cloud.registry.models import AuditAction, DeviceModelUpdate, Entity, GatewayCreate, GatewayUpdate
from misto.cloud.registry.repository import RegistryRepository
from misto.cloud.registry.sql import SqlRegistry
from misto.protocol.vocabulary import SensorKind

ROOT = Path(__file__).resolve().parents[2]
GATEWAYS_SAMPLE = ROOT / "docs" / "samples" / "registry-gateways.csv"
MODELS_SAMPLE = ROOT / "docs" / "samples" / "registry-device-models.csv"
ACTOR = "user:olena"


@pytest.fixture(params=["sqlite", "postgis"])
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRegistry]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgis").url
    async with await SqlRegistry.open(url) as opened:
        yield opened


async def run(
    entity: BulkEntity,
    registry: RegistryRepository,
    data: bytes | str,
    fmt: BulkFormat = BulkFormat.CSV,
    mode: ImportMode = ImportMode.CREATE,
    *,
    dry_run: bool = False,
) -> ImportReport:
    return await import_records(entity, registry, data, fmt=fmt, mode=mode, dry_run=dry_run, actor=ACTOR)


async def city(registry: RegistryRepository) -> None:
    """The three sample files, in the documented order."""
    for entity, sample in ((DEVICE_MODELS, MODELS_SAMPLE), (GATEWAYS, GATEWAYS_SAMPLE), (DEVICES, DEVICES_SAMPLE)):
        report = await run(entity, registry, sample.read_bytes())
        assert (report.outcome, report.errors) == (Outcome.IMPORTED, ()), report


def messages(parsed: Parsed | ImportReport) -> list[str]:
    return [str(error) for error in parsed.errors]


# --- parsing ---------------------------------------------------------------------------------


def test_the_samples_parse_cleanly_and_name_every_column() -> None:
    for entity, sample in ((GATEWAYS, GATEWAYS_SAMPLE), (DEVICE_MODELS, MODELS_SAMPLE)):
        parsed = parse_csv(entity.table, sample.read_bytes())
        assert parsed.errors == []
        assert next(csv.reader(io.StringIO(sample.read_text(encoding="utf-8")))) == list(entity.table.columns)
    models = parse_csv(DEVICE_MODELS.table, MODELS_SAMPLE.read_bytes())
    assert models.rows[0].values["metrics"] == ("pm25", "pm10", "temperature", "relativeHumidity")
    assert models.rows[1].values["profile"] is None
    gateways = parse_csv(GATEWAYS.table, GATEWAYS_SAMPLE.read_bytes())
    assert gateways.rows[0].values["location"] == {"lon": 32.617, "lat": 46.6355}
    assert list(ENTITIES) == ["device-models", "gateways", "devices"]  # the import order


def test_gateway_rows_name_the_gateway_and_the_column() -> None:
    text = (
        "id,name,lon,lat,organisation,colour\n"  # unknown column: the header alone is reported
        "gw-1,A,32.6,46.6,City,red\n"
    )
    assert messages(parse_csv(GATEWAYS.table, text)) == [
        "header, colour: unknown column 'colour'; known: id, name, lon, lat, district, organisation, "
        "owner_contact, visibility, status, notes, version"
    ]
    text = "id,name,lon,lat,organisation\ngw-1,A,32.6,,City\n,B,,,City\ngw-1,C,,,City\n"
    assert messages(parse_csv(GATEWAYS.table, text)) == [
        "row 2 (gateway gw-1), lat: lon and lat are both set or both empty",
        "row 3, id: required: every row names its gateway",
    ]


def test_gateway_geojson_names_the_feature() -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": "gw-1", "geometry": None, "properties": {"model_id": "aq1"}},
            {"type": "Feature", "id": "gw-2", "geometry": {"type": "Polygon", "coordinates": []}},
        ],
    }
    assert messages(parse_geojson(GATEWAYS.table, json.dumps(document))) == [
        "features[0] (gateway gw-1), properties.model_id: unknown property; known: id, name, district, "
        "organisation, owner_contact, visibility, status, notes, version (the position is the geometry)",
        "features[1] (gateway gw-2), geometry: must be a Point or null",
    ]


def test_device_models_refuse_geojson_and_read_metric_lists() -> None:
    collection = '{"type": "FeatureCollection", "features": []}'
    assert messages(parse_geojson(DEVICE_MODELS.table, collection)) == [
        "file, format: device models have no location, so no GeoJSON: import them as CSV"
    ]
    assert DEVICE_MODELS.table.formats == (BulkFormat.CSV,)
    text = "id,kind,manufacturer,name,metrics\nm1,air,A,B, pm25 ;;pm10\nm2,air,A,B,\nm3,air,A,B,lon\n"
    parsed = parse_csv(DEVICE_MODELS.table, text)
    assert parsed.errors == []
    assert [row.values["metrics"] for row in parsed.rows] == [("pm25", "pm10"), (), ("lon",)]


# --- against the registry --------------------------------------------------------------------


async def test_a_whole_city_in_order(registry: SqlRegistry) -> None:
    # devices first: the dry run sees only the registry, which has no gateways or models yet
    early = await run(DEVICES, registry, DEVICES_SAMPLE.read_bytes(), dry_run=True)
    assert early.outcome is Outcome.REFUSED
    assert messages(early)[:2] == [
        "row 2 (device aq-101), gateway_id: gateway 'gw-kherson-001' not found",
        "row 2 (device aq-101), model_id: device model 'aq1' not found",
    ]
    dry = await run(DEVICE_MODELS, registry, MODELS_SAMPLE.read_bytes(), dry_run=True)
    assert (dry.outcome, dry.entity, dry.created) == (Outcome.VALIDATED, "device-models", 2)
    assert await all_models(registry) == []
    await city(registry)
    model = await registry.get_model("aq1")
    assert (model.kind, model.profile, model.metrics) == (
        SensorKind.AIR,
        "acme-aq1",
        ("pm25", "pm10", "temperature", "relativeHumidity"),
    )
    gateway = await registry.get_gateway("gw-kherson-001")
    assert (gateway.name, gateway.notes) == ("School 12 roof", "LTE router in the attic, key at the caretaker")
    for entity, entity_id in ((Entity.DEVICE_MODEL, "nm1"), (Entity.GATEWAY, "gw-kherson-002")):
        [entry] = await registry.audit(entity, entity_id)
        assert (entry.actor, entry.action) == (ACTOR, AuditAction.CREATE)
    assert len((await registry.list_devices()).items) == 3


async def test_bad_gateway_and_model_rows_are_all_reported(registry: SqlRegistry) -> None:
    await city(registry)
    gateways = (
        "id,name,lon,lat,organisation,visibility,status\n"
        "gw-kherson-001,Roof,32.6,46.6,City,public,active\n"  # exists (create mode)
        "GW 9,Roof,32.6,46.6,City,public,active\n"  # not a gateway id
        "gw-9,Roof,181,46.6,City,hidden,broken\n"  # lon out of range, bad visibility and status
        "gw-10,Roof,32.6,46.6,City,public,active\n"  # good
    )
    report = await run(GATEWAYS, registry, gateways)
    assert report.outcome is Outcome.REFUSED
    found = messages(report)
    assert (
        found[0] == "row 2 (gateway gw-kherson-001), id: already exists (use mode upsert to update existing gateways)"
    )
    assert found[1].startswith("row 3 (gateway GW 9), id: ")
    assert found[2:] == [
        "row 4 (gateway gw-9), lon: Input should be less than or equal to 180",
        "row 4 (gateway gw-9), visibility: Input should be 'public' or 'private'",
        "row 4 (gateway gw-9), status: Input should be 'planned', 'active', 'maintenance' or 'retired'",
    ]
    assert report.created == 1
    assert [g.id for g in await all_gateways(registry)] == ["gw-kherson-001", "gw-kherson-002"]
    missing = await run(GATEWAYS, registry, "id,lon,lat\ngw-11,32.6,46.6\n", dry_run=True)
    assert messages(missing)[:2] == [
        "header, name: missing column (required in create mode)",
        "header, organisation: missing column (required in create mode)",
    ]
    models = (
        "id,kind,manufacturer,name,metrics,version\n"
        "aq1,noise,Acme,AQ-1,pm25,1\n"  # the kind of a model that 2 devices use
        "nm1,noise,Acme,NM-1,LAeq;pm99,1\n"  # unknown metric
        "tm1,traffic,Acme,TM-1,vehicleCount;vehicleCount,\n"  # repeated metric
        "Bad Id,air,Acme,X,,\n"
        "pk1,parking,Acme,,occupied,\n"  # empty name
    )
    report = await run(DEVICE_MODELS, registry, models, mode=ImportMode.UPSERT)
    found = messages(report)
    assert found[0] == "row 2 (device model aq1), kind: 2 device(s) of model 'aq1' have kind 'air'"
    assert found[1].startswith("row 3 (device model nm1), metrics: unknown metric(s) 'pm99'; known: ")
    assert found[2] == "row 4 (device model tm1), metrics: metrics must not repeat"
    assert found[3].startswith("row 5 (device model Bad Id), id: String should match pattern")
    assert found[4] == "row 6 (device model pk1), name: Input should be a valid string"
    assert len(found) == 5
    assert (await registry.get_model("nm1")).metrics == ("LAeq", "LAmax")


async def test_upsert_changes_only_the_columns_in_the_file(registry: SqlRegistry) -> None:
    await city(registry)
    report = await run(
        GATEWAYS,
        registry,
        "id,district,version\ngw-kherson-001,Korabelnyi,1\ngw-kherson-002,Dniprovskyi,\n",
        mode=ImportMode.UPSERT,
    )
    assert (report.outcome, report.updated, report.unchanged) == (Outcome.IMPORTED, 1, 1)
    gateway = await registry.get_gateway("gw-kherson-001")
    assert (gateway.district, gateway.name, gateway.version) == ("Korabelnyi", "School 12 roof", 2)
    assert (await registry.audit(Entity.GATEWAY, "gw-kherson-001"))[0].action is AuditAction.UPDATE
    stale = await run(GATEWAYS, registry, "id,district,version\ngw-kherson-001,X,1\n", mode=ImportMode.UPSERT)
    assert messages(stale) == [
        "row 2 (gateway gw-kherson-001), version: the gateway is at version 2, not 1: export it again"
    ]
    # a model nobody uses may change kind; clearing its metrics is an empty cell
    await run(DEVICE_MODELS, registry, "id,kind,manufacturer,name\ntm1,traffic,Acme,TM-1\n")
    changed = await run(DEVICE_MODELS, registry, "id,kind,metrics\ntm1,parking,\n", mode=ImportMode.UPSERT)
    assert (changed.outcome, changed.updated) == (Outcome.IMPORTED, 1)
    assert (await registry.get_model("tm1")).kind is SensorKind.PARKING


@pytest.mark.parametrize(
    ("entity", "fmt"),
    [(GATEWAYS, BulkFormat.CSV), (GATEWAYS, BulkFormat.GEOJSON), (DEVICE_MODELS, BulkFormat.CSV)],
    ids=["gateways-csv", "gateways-geojson", "device-models-csv"],
)
async def test_export_then_import_changes_nothing(registry: SqlRegistry, entity: BulkEntity, fmt: BulkFormat) -> None:
    await city(registry)
    await registry.update_gateway(
        "gw-kherson-002",
        GatewayUpdate(name='=HYPERLINK("http://evil")', notes="-1+2\r\nline 'two', \"quoted\"", owner_contact="'@x"),
        version=1,
        actor=ACTOR,
    )
    await registry.update_model("nm1", DeviceModelUpdate(manufacturer="+Acme; Ltd", metrics=()), version=1, actor=ACTOR)
    before = await entity.records(registry, False)
    exported = await export_records(entity, registry, fmt)
    report = await run(entity, registry, exported, fmt, ImportMode.UPSERT)
    assert (report.outcome, report.created, report.updated, report.unchanged) == (Outcome.IMPORTED, 0, 0, 2)
    assert await entity.records(registry, False) == before
    assert await export_records(entity, registry, fmt) == exported


async def test_csv_export_is_spreadsheet_safe(registry: SqlRegistry) -> None:
    await registry.create_gateway(
        GatewayCreate(id="gw-1", name="=cmd|' /C calc'!A0", organisation="@SUM(A1)", district="-2"), actor=ACTOR
    )
    row = dict(zip(*csv.reader(io.StringIO(await export_records(GATEWAYS, registry, BulkFormat.CSV))), strict=True))
    assert (row["name"], row["organisation"], row["district"]) == ("'=cmd|' /C calc'!A0", "'@SUM(A1)", "'-2")


async def test_public_exports(registry: SqlRegistry) -> None:
    await city(registry)
    document = json.loads(await export_records(GATEWAYS, registry, BulkFormat.GEOJSON, public=True))
    [feature] = document["features"]
    assert (feature["id"], feature["geometry"]["coordinates"]) == ("gw-kherson-001", [32.617, 46.6355])
    assert not {"owner_contact", "notes", "version"} & set(feature["properties"])
    text = await export_records(GATEWAYS, registry, BulkFormat.CSV, public=True)
    assert text.splitlines()[0] == "id,name,lon,lat,district,organisation,visibility,status"
    assert "gw-kherson-002" not in text
    assert "ops@city.example" not in text
    catalogue = await export_records(DEVICE_MODELS, registry, BulkFormat.CSV, public=True)
    assert catalogue.splitlines() == [
        "id,kind,manufacturer,name,profile,metrics",
        "aq1,air,Acme Sensors,AQ-1 particulate monitor,acme-aq1,pm25;pm10;temperature;relativeHumidity",
        "nm1,noise,Acme Sensors,NM-1 sound level meter,,LAeq;LAmax",
    ]
    with pytest.raises(UnsupportedFormatError, match="device models have no location, so no geojson: use csv"):
        await export_records(DEVICE_MODELS, registry, BulkFormat.GEOJSON)


class RacingRegistry:
    """Delegates to a real registry, but another writer creates ``racer`` just before the import's
    write of that gateway."""

    def __init__(self, inner: SqlRegistry, racer: str) -> None:
        self._inner = inner
        self._racer = racer

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def create_gateway(self, data: GatewayCreate, *, actor: str) -> object:
        if data.id == self._racer:
            await self._inner.create_gateway(data, actor="someone-else")
        return await self._inner.create_gateway(data, actor=actor)


async def test_a_gateway_conflict_midway_undoes_what_was_written(registry: SqlRegistry) -> None:
    text = "id,name,organisation\ngw-1,A,City\ngw-2,B,City\ngw-3,C,City\n"
    racing = RacingRegistry(registry, "gw-3")
    report = await run(GATEWAYS, racing, text)  # type: ignore[arg-type]
    assert report.outcome is Outcome.CONFLICT
    [error] = report.errors
    assert (error.where, error.record, error.noun) == ("row 4", "gw-3", "gateway")
    assert str(AlreadyExistsError("gateway", "gw-3")) in error.message
    assert [g.id for g in await all_gateways(registry)] == ["gw-3"]
    assert [e.action for e in await registry.audit(Entity.GATEWAY, "gw-1")] == [AuditAction.DELETE, AuditAction.CREATE]
