"""Hostile files: arbitrary bytes, text and CSV/GeoJSON-shaped input never crash the parsers or the
import; they give rows or errors, each error naming where it is."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.tests.test_registry_bulk import import_devices, parse_csv, parse_geojson
from misto.cloud.registry import bulk
from misto.cloud.registry.bulk import BulkFormat, Parsed
from misto.cloud.registry.bulk_apply import ImportMode, Outcome, import_records
from misto.cloud.registry.bulk_entities import DEVICE_MODELS, DEVICES, GATEWAYS, BulkEntity
from misto.cloud.registry.sql import SqlRegistry

COLUMNS = DEVICES.table.columns
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WHERE = re.compile(r"^(file|header|row \d+|features\[\d+\])$")

cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "32.6", "-91", "nan", "1e400", "=1+1", "'=x", "air", "public", "2026-02-30", "gw-1", "aq1"]),
)
csv_like = st.lists(st.lists(cells, min_size=0, max_size=len(COLUMNS) + 1), min_size=0, max_size=8)
headers = st.lists(st.sampled_from([*COLUMNS, "colour", " id ", ""]), min_size=0, max_size=len(COLUMNS) + 1)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
words = st.sampled_from(
    ["type", "features", "geometry", "properties", "coordinates", "id", "Feature", "Point", *COLUMNS]
)
json_like = st.recursive(
    scalars | words,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words | st.text(max_size=6), inner, max_size=5),
    max_leaves=30,
)


def parse_csv_of(entity: BulkEntity, data: bytes | str) -> Parsed:
    return bulk.parse_csv(entity.table, data)


def parse_geojson_of(entity: BulkEntity, data: bytes | str) -> Parsed:
    return bulk.parse_geojson(entity.table, data)


def check(parsed: Parsed) -> None:
    for error in parsed.errors:
        assert WHERE.match(error.where), error
        assert error.message
        str(error)
    ids = [row.record_id for row in parsed.rows]
    assert len(ids) == len(set(ids))


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes(data: bytes) -> None:
    check(parse_csv(data))
    check(parse_geojson(data))


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    check(parse_csv(text))
    check(parse_geojson(text))


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@FUZZ
@given(headers, csv_like)
def test_csv_shaped(header: list[str], rows: list[list[str]]) -> None:
    check(parse_csv(_csv(header, rows)))


def _collection(features: Any) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features})


feature_like = st.fixed_dictionaries(
    {"type": st.just("Feature")},
    optional={
        "id": st.text(max_size=8) | st.integers(),
        "geometry": st.none() | json_like | st.fixed_dictionaries({"type": st.just("Point"), "coordinates": json_like}),
        "properties": st.dictionaries(words, json_like, max_size=6) | json_like,
    },
)


@FUZZ
@given(st.lists(feature_like | json_like, max_size=6))
def test_geojson_shaped(features: list[Any]) -> None:
    check(parse_geojson(_collection(features)))


@FUZZ
@given(json_like)
def test_any_json(document: Any) -> None:
    check(parse_geojson(json.dumps(document)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(headers, csv_like, st.lists(feature_like, max_size=4))
def test_import_never_raises(tmp_path: Path, header: list[str], rows: list[list[str]], features: list[Any]) -> None:
    """Through the registry checks as well: a report, never an exception."""

    async def run() -> None:
        async with await SqlRegistry.open(f"sqlite:///{tmp_path / 'fuzz.db'}") as registry:
            for fmt, data in ((BulkFormat.CSV, _csv(header, rows)), (BulkFormat.GEOJSON, _collection(features))):
                for mode in ImportMode:
                    report = await import_devices(registry, data, fmt=fmt, mode=mode, dry_run=True, actor="fuzz")
                    assert report.outcome in {Outcome.VALIDATED, Outcome.REFUSED}
                    assert (report.outcome is Outcome.REFUSED) == bool(report.errors)

    asyncio.run(run())


# --- gateways and device models --------------------------------------------------------------

gateway_cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "32.6", "181", "gw-1", "GW 1", "public", "retired", "=1+1", "'-x"]),
)
model_cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "air", "noise", "pm25;pm10", "pm25;pm25", ";;", "pm99", "acme-aq1", "'=x"]),
)


@FUZZ
@given(
    st.lists(st.sampled_from([*GATEWAYS.table.columns, "colour", ""]), max_size=12),
    st.lists(st.lists(gateway_cells, max_size=12), max_size=6),
)
def test_gateway_csv_shaped(header: list[str], rows: list[list[str]]) -> None:
    check(parse_csv_of(GATEWAYS, _csv(header, rows)))


@FUZZ
@given(st.lists(feature_like | json_like, max_size=6))
def test_gateway_geojson_shaped(features: list[Any]) -> None:
    check(parse_geojson_of(GATEWAYS, _collection(features)))


@FUZZ
@given(
    st.lists(st.sampled_from([*DEVICE_MODELS.table.columns, "lon", ""]), max_size=9),
    st.lists(st.lists(model_cells, max_size=9), max_size=6),
    st.binary(max_size=200),
)
def test_model_csv_shaped_and_any_bytes(header: list[str], rows: list[list[str]], data: bytes) -> None:
    check(parse_csv_of(DEVICE_MODELS, _csv(header, rows)))
    check(parse_csv_of(DEVICE_MODELS, data))
    check(parse_geojson_of(DEVICE_MODELS, data))  # always refused: no location


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.sampled_from([*GATEWAYS.table.columns, *DEVICE_MODELS.table.columns]), max_size=10),
    st.lists(st.lists(gateway_cells | model_cells, max_size=10), max_size=5),
    st.lists(feature_like, max_size=4),
)
def test_gateway_and_model_imports_never_raise(
    tmp_path: Path, header: list[str], rows: list[list[str]], features: list[Any]
) -> None:
    async def run() -> None:
        async with await SqlRegistry.open(f"sqlite:///{tmp_path / 'fuzz.db'}") as registry:
            for entity in (GATEWAYS, DEVICE_MODELS):
                for fmt, data in ((BulkFormat.CSV, _csv(header, rows)), (BulkFormat.GEOJSON, _collection(features))):
                    for mode in ImportMode:
                        report = await import_records(
                            entity, registry, data, fmt=fmt, mode=mode, dry_run=True, actor="fuzz"
                        )
                        assert report.outcome in {Outcome.VALIDATED, Outcome.REFUSED}
                        assert (report.outcome is Outcome.REFUSED) == bool(report.errors)

    asyncio.run(run())
