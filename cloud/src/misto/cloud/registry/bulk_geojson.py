"""Bulk registry records as GeoJSON, for entities with a location: parse a ``FeatureCollection``
into rows (each feature's id, properties checked against the
:class:`~misto.cloud.registry.bulk_rows.Table`, and ``Point`` geometry in WGS 84; every problem
reported) and format records as one, an unplaced record with a ``null`` geometry (see
:mod:`misto.cloud.registry.bulk` for the file format). Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from misto.cloud.registry.bulk_rows import (
    BulkFormat,
    Errors,
    Parsed,
    Row,
    Table,
    UnsupportedFormatError,
    decode,
    new_row,
    show,
    too_many,
    unique,
)


def parse_geojson(table: Table, data: bytes | str) -> Parsed:  # noqa: PLR0911 - one refusal per document problem
    """Every feature of a GeoJSON FeatureCollection, or the problems of the document and each feature."""
    out = Parsed()
    errors = Errors(table, out.errors)
    if not table.located:
        errors.add("file", f"{table.noun}s have no location, so no GeoJSON: import them as CSV", name="format")
        return out
    text = decode(data, errors)
    if text is None:
        return out
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        errors.add("file", f"is not valid JSON: {exc}")
        return out
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        errors.add("file", "must be a GeoJSON object with type 'FeatureCollection'", name="type")
        return out
    features = document.get("features")
    if not isinstance(features, list):
        errors.add("file", "must be an array of features", name="features")
        return out
    if "crs" in document and not _is_wgs84(document["crs"]):
        errors.add("file", "only WGS 84 (lon, lat; RFC 7946) is accepted", name="crs")
        return out
    if too_many(len(features), "features", errors):
        return out
    rows = (_feature_row(table, f"features[{index}]", feature, errors) for index, feature in enumerate(features))
    out.rows.extend(unique(rows, errors))
    out.columns = frozenset({"id", *(name for row in out.rows for name in row.values)})
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _is_wgs84(crs: object) -> bool:
    if not isinstance(crs, dict) or not isinstance(crs.get("properties"), dict):
        return False
    name = crs["properties"].get("name")
    return isinstance(name, str) and name in {
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "urn:ogc:def:crs:OGC::CRS84",
        "EPSG:4326",
        "urn:ogc:def:crs:EPSG::4326",
    }


def _feature_row(table: Table, where: str, feature: object, errors: Errors) -> Row | None:  # noqa: PLR0911 - one refusal each
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        errors.add(where, "must be an object with type 'Feature'", name="type")
        return None
    properties = feature.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        errors.add(where, "must be an object", name="properties")
        return None
    raw_id = feature.get("id", properties.get("id"))
    if "id" in feature and "id" in properties and properties["id"] != feature["id"]:
        errors.add(where, f"feature id {show(feature['id'])} differs from properties.id", None, "id")
        return None
    if not isinstance(raw_id, str) or not raw_id:
        errors.add(where, "required: a string id (the feature's id or properties.id)", None, "id")
        return None
    unknown = sorted({name for name in properties if name not in table.properties})
    if unknown:
        message = f"unknown property; known: {', '.join(table.properties)} (the position is the geometry)"
        for name in unknown:
            errors.add(where, message, raw_id, f"properties.{name}")
        return None
    values = {name: value for name, value in properties.items() if name not in {"id", "version"}}
    if "geometry" in feature:
        location, ok = _point(where, raw_id, feature["geometry"], errors)
        if not ok:
            return None
        values["location"] = location
    return new_row(where, raw_id, values, properties.get("version"), errors)


def _point(where: str, record_id: str, geometry: object, errors: Errors) -> tuple[dict[str, Any] | None, bool]:
    if geometry is None:
        return None, True
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        errors.add(where, "must be a Point or null", record_id, "geometry")
        return None, False
    coordinates = geometry.get("coordinates")
    if (
        not isinstance(coordinates, list)
        or len(coordinates) not in {2, 3}
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates)
    ):
        errors.add(where, "must be [lon, lat] in degrees", record_id, "geometry.coordinates")
        return None, False
    return {"lon": coordinates[0], "lat": coordinates[1]}, True


def export_geojson(table: Table, records: Iterable[object], *, public: bool = False) -> str:
    """Records as a FeatureCollection of Point features (``null`` geometry when unplaced)."""
    if not table.located:
        raise UnsupportedFormatError(table.noun, BulkFormat.GEOJSON)
    features = []
    for record in records:
        flat = table.flat(record)
        lon, lat = flat.pop("lon"), flat.pop("lat")
        record_id = flat.pop("id")
        properties = {k: _json(v) for k, v in flat.items() if not (public and k in table.private)}
        geometry = None if lon is None else {"type": "Point", "coordinates": [lon, lat]}
        features.append({"type": "Feature", "id": record_id, "geometry": geometry, "properties": properties})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1) + "\n"


def _json(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
