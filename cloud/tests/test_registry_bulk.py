"""Bulk import and export of devices (CSV, GeoJSON): parsing errors each named by row and field, a
dry run that reports every bad row, all-or-nothing imports audited with the actor, and export ->
import (upsert) changing nothing, on SQLite and on PostgreSQL + PostGIS."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from misto.cloud.registry import bulk
from misto.cloud.registry.bulk import MAX_ROWS, BulkFormat, Parsed
from misto.cloud.registry.bulk_apply import ImportMode, ImportReport, Outcome, export_records, import_records
from misto.cloud.registry.bulk_entities import DEVICES, all_devices
from misto.cloud.registry.errors import AlreadyExistsError
from misto.cloud.registry.models import (
    AuditAction,
    DeviceCreate,
    DeviceModelCreate,
    DeviceUpdate,
    Entity,
    GatewayCreate,
)
from misto.cloud.registry.repository import RegistryRepository
from misto.cloud.registry.sql import SqlRegistry
from misto.protocol.vocabulary import SensorKind

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "samples" / "registry-devices.csv"
ACTOR = "user:olena"
HEADER = "id,gateway_id,model_id,kind,install_date,lon,lat,district,organisation,visibility"
COLUMNS = DEVICES.table.columns


def parse_csv(data: bytes | str) -> Parsed:
    return bulk.parse_csv(DEVICES.table, data)


def parse_geojson(data: bytes | str) -> Parsed:
    return bulk.parse_geojson(DEVICES.table, data)


async def import_devices(
    registry: RegistryRepository, data: bytes | str, *, fmt: BulkFormat, mode: ImportMode, dry_run: bool, actor: str
) -> ImportReport:
    return await import_records(DEVICES, registry, data, fmt=fmt, mode=mode, dry_run=dry_run, actor=actor)


async def export_devices(registry: RegistryRepository, fmt: BulkFormat, *, public: bool = False) -> str:
    return await export_records(DEVICES, registry, fmt, public=public)


@pytest.fixture(params=["sqlite", "postgis"])
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRegistry]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgis").url
    async with await SqlRegistry.open(url) as opened:
        await seed(opened)
        yield opened


async def seed(registry: RegistryRepository) -> None:
    for model in (
        DeviceModelCreate(id="aq1", kind=SensorKind.AIR, manufacturer="Acme", name="AQ-1", metrics=("pm25",)),
        DeviceModelCreate(id="nm1", kind=SensorKind.NOISE, manufacturer="Acme", name="NM-1", metrics=("LAeq",)),
    ):
        await registry.create_model(model, actor="seed")
    for gateway in ("gw-kherson-001", "gw-kherson-002"):
        await registry.create_gateway(GatewayCreate(id=gateway, name=gateway, organisation="City"), actor="seed")


def messages(errors: object) -> list[str]:
    return [str(error) for error in errors]  # type: ignore[attr-defined]


# --- parsing ---------------------------------------------------------------------------------


def test_the_sample_file_parses_cleanly() -> None:
    parsed = parse_csv(SAMPLE.read_bytes())
    assert parsed.errors == []
    assert [row.record_id for row in parsed.rows] == ["aq-101", "aq-102", "nm-201"]
    assert parsed.rows[2].values["notes"] == "mast 3, facing the river"
    assert parsed.rows[1].values["kind"] is None  # empty cell: the model's kind
    assert next(csv.reader(io.StringIO(SAMPLE.read_text(encoding="utf-8")))) == list(COLUMNS)


def test_header_problems_are_all_reported() -> None:
    parsed = parse_csv("id,gateway_id,colour,lon,colour\naq-1,gw-1,red,32.6,red\n")
    assert messages(parsed.errors) == [
        f"header, colour: unknown column 'colour'; known: {', '.join(COLUMNS)}",
        f"header, colour: unknown column 'colour'; known: {', '.join(COLUMNS)}",
        "header, colour: column 'colour' appears 2 times",
        "header, lat: missing: lon and lat come together",
    ]
    assert parsed.rows == []


def test_missing_id_column_and_empty_file() -> None:
    assert messages(parse_csv("gateway_id\ngw-1\n").errors) == ["header, id: missing required column"]
    assert messages(parse_csv(b"").errors)[0].startswith("header: missing: the first row must name the columns")


def test_bad_cells_name_row_device_and_column() -> None:
    text = (
        f"{HEADER}\n"
        "aq-1,gw-1,aq1,,,32.6,north,Centre,City,public\n"  # row 2: lat not a number
        "aq-2,gw-1,aq1,,,32.6,,Centre,City,public\n"  # row 3: lat missing
        "aq-3,gw-1,aq1,,,nan,46.6,Centre,City,public\n"  # row 4: not finite
        ",gw-1,aq1,,,32.6,46.6,Centre,City,public\n"  # row 5: no id
        "aq-5,gw-1\n"  # row 6: short row
        "aq-1,gw-1,aq1,,,32.6,46.6,Centre,City,public\n"  # row 7: duplicate id
    )
    parsed = parse_csv(text)
    assert messages(parsed.errors) == [
        "row 2 (device aq-1), lat: 'north' is not a number",
        "row 3 (device aq-2), lat: lon and lat are both set or both empty",
        "row 4 (device aq-3), lon: 'nan' is not a finite number",
        "row 5, id: required: every row names its device",
        "row 6 (device aq-5): has 2 cells; the header has 10",
    ]
    # aq-1 was refused at row 2, so row 7 is its first good occurrence
    assert [row.record_id for row in parsed.rows] == ["aq-1"]
    assert parsed.rows[0].where == "row 7"


def test_duplicate_ids_within_the_file() -> None:
    text = f"{HEADER}\naq-1,gw-1,aq1,,,32.6,46.6,C,City,public\naq-1,gw-1,aq1,,,32.6,46.6,C,City,public\n"
    assert messages(parse_csv(text).errors) == ["row 3 (device aq-1), id: duplicate id: 'aq-1' is also at row 2"]


def test_encoding_bom_and_invalid_utf8() -> None:
    good = f"{HEADER}\naq-1,gw-1,aq1,,,32.6,46.6,Центральний,Місто,public\n".encode()
    assert parse_csv(b"\xef\xbb\xbf" + good).errors == []  # Excel's UTF-8 with BOM
    assert parse_csv(b"\xef\xbb\xbf" + good).rows[0].values["district"] == "Центральний"
    latin1 = f"{HEADER}\naq-1,gw-1,aq1,,,32.6,46.6,Kh\xe9rson,City,public\n".encode("latin-1")
    [error] = parse_csv(latin1).errors
    assert str(error).startswith("file: is not UTF-8: byte ")
    assert "(0xe9)" in str(error)
    assert messages(parse_csv(b"id\n\x00\n").errors) == ["file: contains a NUL character (at character 3)"]
    assert messages(parse_csv('id,notes\naq-1,"open\n').errors) == ["file: is not valid CSV: unexpected end of data"]


def test_limits_are_clear_errors() -> None:
    rows = "".join(f"d-{i}\n" for i in range(MAX_ROWS + 1))
    assert messages(parse_csv("id\n" + rows).errors) == [
        f"file: has {MAX_ROWS + 1} rows; the limit is {MAX_ROWS} (split the file)"
    ]
    assert messages(parse_csv(b"x" * (10 * 1024 * 1024 + 1)).errors) == [
        f"file: is {10 * 1024 * 1024 + 1} bytes; the limit is {10 * 1024 * 1024} (split the file)"
    ]


def test_geojson_problems_name_feature_and_property() -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": "aq-1", "geometry": {"type": "Point", "coordinates": [32.6, 46.6]}},
            {"type": "Feature", "geometry": None, "properties": {"id": "aq-2", "colour": "red"}},
            {"type": "Feature", "id": "aq-3", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
            {"type": "Feature", "id": "aq-4", "geometry": {"type": "Point", "coordinates": ["x", 1]}},
            {"type": "Feature", "geometry": None, "properties": {}},
            {"type": "Feature", "id": "aq-1", "geometry": None},
            ["not a feature"],
        ],
    }
    parsed = parse_geojson(json.dumps(document))
    assert messages(parsed.errors) == [
        "features[1] (device aq-2), properties.colour: unknown property; known: id, gateway_id, model_id, kind, "
        "install_date, district, organisation, owner_contact, visibility, status, notes, version "
        "(the position is the geometry)",
        "features[2] (device aq-3), geometry: must be a Point or null",
        "features[3] (device aq-4), geometry.coordinates: must be [lon, lat] in degrees",
        "features[4], id: required: a string id (the feature's id or properties.id)",
        "features[5] (device aq-1), id: duplicate id: 'aq-1' is also at features[0]",
        "features[6], type: must be an object with type 'Feature'",
    ]
    assert messages(parse_geojson("[1, 2]").errors) == [
        "file, type: must be a GeoJSON object with type 'FeatureCollection'"
    ]
    assert messages(parse_geojson('{"type": "FeatureCollection", "features": [NaN]}').errors) == [
        "file: is not valid JSON: NaN is not a JSON number"
    ]
    for name in ("EPSG:3857", [], {"a": 1}, 4326):  # not a name, or not one of WGS 84's: refused, never a crash
        crs = {"type": "name", "properties": {"name": name}}
        document = json.dumps({"type": "FeatureCollection", "features": [], "crs": crs})
        assert messages(parse_geojson(document).errors) == ["file, crs: only WGS 84 (lon, lat; RFC 7946) is accepted"]


# --- against the registry --------------------------------------------------------------------


async def test_dry_run_reports_every_bad_row_and_writes_nothing(registry: SqlRegistry) -> None:
    await registry.create_device(
        DeviceCreate(id="aq-9", gateway_id="gw-kherson-001", model_id="aq1", organisation="City"), actor="seed"
    )
    text = (
        f"{HEADER}\n"
        "aq-1,gw-kherson-001,aq1,,2026-13-01,32.6,46.6,Centre,City,public\n"  # bad date
        "aq-2,gw-nowhere,aq1,,,32.6,46.6,Centre,City,public\n"  # unknown gateway
        "aq-3,gw-kherson-001,zz9,,,32.6,46.6,Centre,City,public\n"  # unknown model
        "aq-4,gw-kherson-001,aq1,noise,,32.6,46.6,Centre,City,public\n"  # kind not the model's
        "aq-5,gw-kherson-001,aq1,,,32.6,95,Centre,City,secret\n"  # lat out of range, bad visibility
        "aq-9,gw-kherson-001,aq1,,,32.6,46.6,Centre,City,public\n"  # exists (create mode)
        "aq-7,gw-kherson-001,aq1,,,32.6,46.6,Centre,City,public\n"  # good
    )
    report = await import_devices(registry, text, fmt=BulkFormat.CSV, mode=ImportMode.CREATE, dry_run=True, actor=ACTOR)
    assert report.outcome is Outcome.REFUSED
    assert messages(report.errors) == [
        "row 2 (device aq-1), install_date: Input should be a valid date or datetime, month value is outside "
        "expected range of 1-12",
        "row 3 (device aq-2), gateway_id: gateway 'gw-nowhere' not found",
        "row 4 (device aq-3), model_id: device model 'zz9' not found",
        "row 5 (device aq-4), kind: noise does not match the kind of model 'aq1' (air)",
        "row 6 (device aq-5), lat: Input should be less than or equal to 90",
        "row 6 (device aq-5), visibility: Input should be 'public' or 'private'",
        "row 7 (device aq-9), id: already exists (use mode upsert to update existing devices)",
    ]
    assert (report.created, report.updated, report.unchanged) == (1, 0, 0)
    assert [d.id for d in await all_devices(registry)] == ["aq-9"]
    # a real import of the same file is refused the same way and writes nothing either
    real = await import_devices(registry, text, fmt=BulkFormat.CSV, mode=ImportMode.CREATE, dry_run=False, actor=ACTOR)
    assert real.outcome is Outcome.REFUSED
    assert real.errors == report.errors
    assert [d.id for d in await all_devices(registry)] == ["aq-9"]


async def test_create_mode_needs_the_identity_columns(registry: SqlRegistry) -> None:
    report = await import_devices(
        registry, "id,district\naq-1,Centre\n", fmt=BulkFormat.CSV, mode=ImportMode.CREATE, dry_run=True, actor=ACTOR
    )
    assert messages(report.errors)[:3] == [
        "header, gateway_id: missing column (required in create mode)",
        "header, model_id: missing column (required in create mode)",
        "header, organisation: missing column (required in create mode)",
    ]


async def test_import_creates_and_audits_then_upsert_updates(registry: SqlRegistry) -> None:
    data = SAMPLE.read_bytes()
    dry = await import_devices(registry, data, fmt=BulkFormat.CSV, mode=ImportMode.CREATE, dry_run=True, actor=ACTOR)
    assert (dry.outcome, dry.created, dry.errors) == (Outcome.VALIDATED, 3, ())
    assert await all_devices(registry) == []
    report = await import_devices(
        registry, data, fmt=BulkFormat.CSV, mode=ImportMode.CREATE, dry_run=False, actor=ACTOR
    )
    assert (report.outcome, report.created, report.updated) == (Outcome.IMPORTED, 3, 0)
    aq102 = await registry.get_device("aq-102")
    assert (aq102.kind, aq102.owner_contact, aq102.notes) == (SensorKind.AIR, None, None)
    [entry] = await registry.audit(Entity.DEVICE, "aq-101")
    assert (entry.actor, entry.action) == (ACTOR, AuditAction.CREATE)
    # upsert: change one district, leave the rest; only columns in the file are touched
    text = "id,district,version\naq-101,Korabelnyi,1\naq-102,Tsentralnyi,\n"
    upsert = await import_devices(
        registry, text, fmt=BulkFormat.CSV, mode=ImportMode.UPSERT, dry_run=False, actor=ACTOR
    )
    assert (upsert.outcome, upsert.created, upsert.updated, upsert.unchanged) == (Outcome.IMPORTED, 0, 1, 1)
    aq101 = await registry.get_device("aq-101")
    assert (aq101.district, aq101.version, aq101.notes) == ("Korabelnyi", 2, "on the roof of school 12")
    assert (await registry.audit(Entity.DEVICE, "aq-101"))[0].actor == ACTOR
    # a stale version is a bad row
    stale = await import_devices(registry, text, fmt=BulkFormat.CSV, mode=ImportMode.UPSERT, dry_run=False, actor=ACTOR)
    assert messages(stale.errors) == [
        "row 2 (device aq-101), version: the device is at version 2, not 1: export it again"
    ]


@pytest.mark.parametrize("fmt", list(BulkFormat))
async def test_export_then_import_changes_nothing(registry: SqlRegistry, fmt: BulkFormat) -> None:
    await import_devices(
        registry, SAMPLE.read_bytes(), fmt=BulkFormat.CSV, mode=ImportMode.CREATE, dry_run=False, actor=ACTOR
    )
    tricky = DeviceUpdate(
        district='=HYPERLINK("http://evil")', notes="-1+2\r\nline 'two', \"quoted\"", owner_contact="'@x"
    )
    await registry.update_device("aq-102", tricky, version=1, actor=ACTOR)
    before = await all_devices(registry)
    exported = await export_devices(registry, fmt)
    report = await import_devices(registry, exported, fmt=fmt, mode=ImportMode.UPSERT, dry_run=False, actor=ACTOR)
    assert (report.outcome, report.created, report.updated, report.unchanged) == (Outcome.IMPORTED, 0, 0, 3)
    assert await all_devices(registry) == before
    assert await export_devices(registry, fmt) == exported
    # and into an empty registry, create mode gives the same devices
    for device in before:
        await registry.delete_device(device.id, actor=ACTOR)
    again = await import_devices(registry, exported, fmt=fmt, mode=ImportMode.CREATE, dry_run=False, actor=ACTOR)
    assert again.created == 3
    fields = ("id", "gateway_id", "model_id", "kind", "install_date", "location", "district", "organisation")
    after = await all_devices(registry)
    assert [[getattr(d, f) for f in fields] for d in after] == [[getattr(d, f) for f in fields] for d in before]
    assert [(d.owner_contact, d.notes, d.visibility, d.status) for d in after] == [
        (d.owner_contact, d.notes, d.visibility, d.status) for d in before
    ]


async def test_csv_export_escapes_formulas(registry: SqlRegistry) -> None:
    await registry.create_device(
        DeviceCreate(
            id="aq-1",
            gateway_id="gw-kherson-001",
            model_id="aq1",
            organisation="=cmd|' /C calc'!A0",
            district="+Centre",
            notes="@SUM(A1)",
            owner_contact="-2",
        ),
        actor=ACTOR,
    )
    text = await export_devices(registry, BulkFormat.CSV)
    row = dict(zip(*csv.reader(io.StringIO(text)), strict=True))
    assert row["organisation"] == "'=cmd|' /C calc'!A0"
    assert (row["district"], row["notes"], row["owner_contact"]) == ("'+Centre", "'@SUM(A1)", "'-2")
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in row.values())


async def test_public_export_leaves_out_private_devices_and_fields(registry: SqlRegistry) -> None:
    await import_devices(
        registry, SAMPLE.read_bytes(), fmt=BulkFormat.CSV, mode=ImportMode.CREATE, dry_run=False, actor=ACTOR
    )
    document = json.loads(await export_devices(registry, BulkFormat.GEOJSON, public=True))
    assert [f["id"] for f in document["features"]] == ["aq-101", "nm-201"]
    assert all(not {"owner_contact", "notes", "version"} & set(f["properties"]) for f in document["features"])
    text = await export_devices(registry, BulkFormat.CSV, public=True)
    assert "ops@city.example" not in text
    assert "aq-102" not in text
    assert "school 12" not in text


class RacingRegistry:
    """Delegates to a real registry, but another writer creates ``racer`` just before the import's
    write of it (as a concurrent operator would)."""

    def __init__(self, inner: SqlRegistry, racer: str) -> None:
        self._inner = inner
        self._racer = racer

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def create_device(self, data: DeviceCreate, *, actor: str) -> object:
        if data.id == self._racer:
            await self._inner.create_device(data, actor="someone-else")
        return await self._inner.create_device(data, actor=actor)


async def test_a_conflict_midway_undoes_what_was_written(registry: SqlRegistry) -> None:
    await registry.create_device(
        DeviceCreate(id="aq-1", gateway_id="gw-kherson-001", model_id="aq1", organisation="City"), actor="seed"
    )
    text = (
        "id,gateway_id,model_id,organisation,district\n"
        "aq-1,gw-kherson-001,aq1,City,Changed\n"
        "aq-101,gw-kherson-001,aq1,City,A\n"
        "aq-102,gw-kherson-001,aq1,City,B\n"
    )
    racing = RacingRegistry(registry, "aq-102")
    report = await import_devices(racing, text, fmt=BulkFormat.CSV, mode=ImportMode.UPSERT, dry_run=False, actor=ACTOR)  # type: ignore[arg-type]
    assert report.outcome is Outcome.CONFLICT
    [error] = report.errors
    assert error.where == "row 4"
    assert error.record == "aq-102"
    assert str(AlreadyExistsError("device", "aq-102")) in error.message
    ids = [d.id for d in await all_devices(registry)]
    assert ids == ["aq-1", "aq-102"]  # aq-101 (created by the import) undone; aq-102 is the other writer's
    assert (await registry.get_device("aq-1")).district is None  # never updated (creates run first)
    assert [e.action for e in await registry.audit(Entity.DEVICE, "aq-101")] == [AuditAction.DELETE, AuditAction.CREATE]
