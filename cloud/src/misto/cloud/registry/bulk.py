"""Bulk devices as CSV or GeoJSON: parse a file into rows (every problem reported, nothing raised
for bad content) and format the registry's devices for export. Pure: no I/O, no registry;
:mod:`misto.cloud.registry.bulk_apply` checks the rows against the registry and writes them.

CSV: UTF-8 (a byte-order mark is accepted), a header row naming :data:`COLUMNS` (``id`` always;
columns left out are left unchanged on an existing device), one device per row, ``lon`` and
``lat`` together or not at all; an empty cell is "no value". Rows are numbered as a spreadsheet
shows them: the header is row 1. GeoJSON: a ``FeatureCollection`` of ``Feature`` objects with a
``Point`` geometry (WGS 84, lon/lat) or ``null``, the device id as the feature's ``id`` or
``properties.id``, the other columns as ``properties``; features are numbered from 0.

Export is injection-safe for spreadsheets: a text cell starting with ``=``, ``+``, ``-``, ``@``,
a tab, a carriage return or ``'`` gets a leading ``'`` (so Excel or LibreOffice show it as text
rather than run it as a formula); import removes one leading ``'`` before any of those
characters, so export followed by import gives back the same values.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from pydantic import ValidationError

from misto.cloud.registry.models import DeviceCreate, DeviceRecord, DeviceUpdate

MAX_BYTES: Final = 10 * 1024 * 1024
MAX_ROWS: Final = 10_000

#: Columns in export order. ``version`` is the record's version (checked on upsert when given).
COLUMNS: Final = (
    "id",
    "gateway_id",
    "model_id",
    "kind",
    "install_date",
    "lon",
    "lat",
    "district",
    "organisation",
    "owner_contact",
    "visibility",
    "status",
    "notes",
    "version",
)
#: Columns the public export leaves out (private fields; private devices are left out entirely).
PRIVATE_COLUMNS: Final = frozenset({"owner_contact", "notes", "version"})
REQUIRED_COLUMNS: Final = ("id",)
#: Also required in create mode (every row is a new device).
CREATE_COLUMNS: Final = ("gateway_id", "model_id", "organisation")
#: The device fields a row may set (``location`` from lon/lat or the GeoJSON geometry).
FIELDS: Final = tuple(name for name in DeviceUpdate.model_fields)
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r", "'")


class BulkFormat(StrEnum):
    CSV = "csv"
    GEOJSON = "geojson"


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: where (``row 7``, ``features[3]``, ``header``, ``file``), which device, which
    field (a column or property name), and what is wrong."""

    where: str
    message: str
    device: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        device = f" (device {self.device})" if self.device else ""
        if self.field:
            return f"{self.where}{device}, {self.field}: {self.message}"
        return f"{self.where}{device}: {self.message}"


@dataclass(frozen=True, slots=True)
class Row:
    """One device as the file gives it: ``values`` holds only the fields the file sets (a
    field left out stays as it is on an existing device), ``location`` as a ``{lon, lat}`` dict
    or None."""

    where: str
    device_id: str
    values: Mapping[str, Any]
    version: int | None = None


@dataclass(slots=True)
class Parsed:
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    columns: frozenset[str] = frozenset()  # the fields the file names (header or any feature)


def _decode(data: bytes | str, errors: list[RowError]) -> str | None:
    if len(data) > MAX_BYTES:
        errors.append(RowError("file", f"is {len(data)} bytes; the limit is {MAX_BYTES} (split the file)"))
        return None
    if isinstance(data, str):
        text = data.removeprefix("\ufeff")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            errors.append(RowError("file", f"is not UTF-8: byte {exc.start} ({data[exc.start]:#04x}) is invalid"))
            return None
    if "\x00" in text:  # no database stores it in text, no spreadsheet writes it
        errors.append(RowError("file", f"contains a NUL character (at character {text.index(chr(0))})"))
        return None
    return text


def _unescape(cell: str) -> str:
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


def _escape(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _duplicate(seen: dict[str, str], device_id: str, where: str, errors: list[RowError]) -> bool:
    first = seen.setdefault(device_id, where)
    if first != where:
        errors.append(RowError(where, f"duplicate id: {device_id!r} is also at {first}", device_id, "id"))
        return True
    return False


def _show(raw: object, limit: int = 40) -> str:
    """A value for a message, cut to ``limit`` characters."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _version(raw: object, where: str, device_id: str, errors: list[RowError]) -> tuple[bool, int | None]:
    if raw is None or raw == "":
        return True, None
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit() and len(raw.strip()) <= 18:
        number = int(raw)
        if number >= 1:
            return True, number
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return True, raw
    errors.append(RowError(where, f"{_show(raw)} is not a version (an integer from 1)", device_id, "version"))
    return False, None


def _number(raw: str, name: str, where: str, device_id: str, errors: list[RowError]) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        errors.append(RowError(where, f"{_show(raw)} is not a number", device_id, name))
        return None
    if not math.isfinite(value):
        errors.append(RowError(where, f"{_show(raw)} is not a finite number", device_id, name))
        return None
    return value


# --- CSV ---------------------------------------------------------------------------------------


def parse_csv(data: bytes | str) -> Parsed:
    """Every row of a CSV file, or the problems of the file, its header and each bad row."""
    out = Parsed()
    text = _decode(data, out.errors)
    if text is None:
        return out
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        out.errors.append(RowError("file", f"is not valid CSV: {exc}"))
        return out
    if not records or not any(cell.strip() for cell in records[0]):
        out.errors.append(RowError("header", f"missing: the first row must name the columns ({', '.join(COLUMNS)})"))
        return out
    header = [cell.strip() for cell in records[0]]
    if not _check_header(header, out.errors):
        return out
    out.columns = frozenset("location" if name in {"lon", "lat"} else name for name in header)
    body = records[1:]
    if len(body) > MAX_ROWS:
        out.errors.append(RowError("file", f"has {len(body)} rows; the limit is {MAX_ROWS} (split the file)"))
        return out
    seen: dict[str, str] = {}
    for number, cells in enumerate(body, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line (spreadsheets add them at the end)
        row = _csv_row(f"row {number}", header, cells, out.errors)
        if row is not None and not _duplicate(seen, row.device_id, row.where, out.errors):
            out.rows.append(row)
    return out


def _check_header(header: list[str], errors: list[RowError]) -> bool:
    known = ", ".join(COLUMNS)
    found = [
        RowError("header", f"unknown column {name!r}; known: {known}", field=name)
        for name in header
        if name not in COLUMNS
    ]
    found += [
        RowError("header", f"column {name!r} appears {header.count(name)} times", field=name)
        for name in sorted({name for name in header if header.count(name) > 1})
    ]
    found += [
        RowError("header", "missing required column", field=name) for name in REQUIRED_COLUMNS if name not in header
    ]
    if ("lon" in header) != ("lat" in header):
        missing = "lat" if "lon" in header else "lon"
        found.append(RowError("header", "missing: lon and lat come together", field=missing))
    errors.extend(found)
    return not found


def _csv_row(where: str, header: list[str], cells: list[str], errors: list[RowError]) -> Row | None:
    cells = [_unescape(cell) for cell in cells]
    named = dict(zip(header, cells, strict=False))
    device_id = named.get("id", "").strip()
    if len(cells) != len(header):
        errors.append(RowError(where, f"has {len(cells)} cells; the header has {len(header)}", device_id or None))
        return None
    if not device_id:
        errors.append(RowError(where, "required: every row names its device", None, "id"))
        return None
    values: dict[str, Any] = {}
    ok = True
    for name, cell in named.items():
        if name in {"id", "version", "lon", "lat"}:
            continue
        values[name] = cell if cell != "" else None
    if "lon" in named:
        lon_raw, lat_raw = named["lon"].strip(), named["lat"].strip()
        if lon_raw == "" and lat_raw == "":
            values["location"] = None
        elif lon_raw == "" or lat_raw == "":
            errors.append(
                RowError(where, "lon and lat are both set or both empty", device_id, "lon" if not lon_raw else "lat")
            )
            ok = False
        else:
            lon = _number(lon_raw, "lon", where, device_id, errors)
            lat = _number(lat_raw, "lat", where, device_id, errors)
            ok = ok and lon is not None and lat is not None
            values["location"] = {"lon": lon, "lat": lat}
    version_ok, version = _version(named.get("version"), where, device_id, errors)
    if not (ok and version_ok):
        return None
    return Row(where, device_id, values, version)


def export_csv(records: Iterable[DeviceRecord], *, public: bool = False) -> str:
    """Devices as CSV (every column; the public export without :data:`PRIVATE_COLUMNS`)."""
    columns = [name for name in COLUMNS if not (public and name in PRIVATE_COLUMNS)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in records:
        cells = _flat(record)
        writer.writerow([_cell(cells[name]) for name in columns])
    return buffer.getvalue()


def _flat(record: DeviceRecord) -> dict[str, object]:
    location = record.location
    return {
        "id": record.id,
        "gateway_id": record.gateway_id,
        "model_id": record.model_id,
        "kind": record.kind.value,
        "install_date": record.install_date.isoformat() if record.install_date else None,
        "lon": location.lon if location else None,
        "lat": location.lat if location else None,
        "district": record.district,
        "organisation": record.organisation,
        "owner_contact": record.owner_contact,
        "visibility": record.visibility.value,
        "status": record.status.value,
        "notes": record.notes,
        "version": record.version,
    }


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _escape(value)
    return repr(value) if isinstance(value, float) else str(value)


# --- GeoJSON -----------------------------------------------------------------------------------


def parse_geojson(data: bytes | str) -> Parsed:  # noqa: PLR0911 - one refusal per document problem
    """Every feature of a GeoJSON FeatureCollection, or the problems of the document and each feature."""
    out = Parsed()
    text = _decode(data, out.errors)
    if text is None:
        return out
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        out.errors.append(RowError("file", f"is not valid JSON: {exc}"))
        return out
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        out.errors.append(RowError("file", "must be a GeoJSON object with type 'FeatureCollection'", field="type"))
        return out
    features = document.get("features")
    if not isinstance(features, list):
        out.errors.append(RowError("file", "must be an array of features", field="features"))
        return out
    if "crs" in document and not _is_wgs84(document["crs"]):
        out.errors.append(RowError("file", "only WGS 84 (lon, lat; RFC 7946) is accepted", field="crs"))
        return out
    if len(features) > MAX_ROWS:
        out.errors.append(RowError("file", f"has {len(features)} features; the limit is {MAX_ROWS} (split the file)"))
        return out
    seen: dict[str, str] = {}
    columns: set[str] = set()
    for index, feature in enumerate(features):
        row = _feature_row(f"features[{index}]", feature, out.errors)
        if row is not None and not _duplicate(seen, row.device_id, row.where, out.errors):
            out.rows.append(row)
            columns.update(row.values)
    out.columns = frozenset(columns | {"id"})
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _is_wgs84(crs: object) -> bool:
    if not isinstance(crs, dict) or not isinstance(crs.get("properties"), dict):
        return False
    name = crs["properties"].get("name")
    return name in {
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "urn:ogc:def:crs:OGC::CRS84",
        "EPSG:4326",
        "urn:ogc:def:crs:EPSG::4326",
    }


def _feature_row(where: str, feature: object, errors: list[RowError]) -> Row | None:  # noqa: PLR0911 - one refusal each
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        errors.append(RowError(where, "must be an object with type 'Feature'", field="type"))
        return None
    properties = feature.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        errors.append(RowError(where, "must be an object", field="properties"))
        return None
    raw_id = feature.get("id", properties.get("id"))
    if "id" in feature and "id" in properties and properties["id"] != feature["id"]:
        errors.append(RowError(where, f"feature id {feature['id']!r} differs from properties.id", None, "id"))
        return None
    if not isinstance(raw_id, str) or not raw_id:
        errors.append(RowError(where, "required: a string id (the feature's id or properties.id)", None, "id"))
        return None
    unknown = sorted({name for name in properties if name not in COLUMNS or name in {"lon", "lat"}})
    if unknown:
        known = ", ".join(name for name in COLUMNS if name not in {"lon", "lat"})
        message = f"unknown property; known: {known} (the position is the geometry)"
        errors.extend(RowError(where, message, raw_id, f"properties.{name}") for name in unknown)
        return None
    values = {name: value for name, value in properties.items() if name not in {"id", "version"}}
    if "geometry" in feature:
        location, ok = _point(where, raw_id, feature["geometry"], errors)
        if not ok:
            return None
        values["location"] = location
    version_ok, version = _version(properties.get("version"), where, raw_id, errors)
    if not version_ok:
        return None
    return Row(where, raw_id, values, version)


def _point(where: str, device_id: str, geometry: object, errors: list[RowError]) -> tuple[dict[str, Any] | None, bool]:
    if geometry is None:
        return None, True
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        errors.append(RowError(where, "must be a Point or null", device_id, "geometry"))
        return None, False
    coordinates = geometry.get("coordinates")
    if (
        not isinstance(coordinates, list)
        or len(coordinates) not in {2, 3}
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates)
    ):
        errors.append(RowError(where, "must be [lon, lat] in degrees", device_id, "geometry.coordinates"))
        return None, False
    return {"lon": coordinates[0], "lat": coordinates[1]}, True


def export_geojson(records: Iterable[DeviceRecord], *, public: bool = False) -> str:
    """Devices as a FeatureCollection of Point features (``null`` geometry when unplaced)."""
    features = []
    for record in records:
        flat = _flat(record)
        lon, lat = flat.pop("lon"), flat.pop("lat")
        properties = {k: v for k, v in flat.items() if k != "id" and not (public and k in PRIVATE_COLUMNS)}
        geometry = None if lon is None else {"type": "Point", "coordinates": [lon, lat]}
        features.append({"type": "Feature", "id": record.id, "geometry": geometry, "properties": properties})
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1) + "\n"


# --- shared ------------------------------------------------------------------------------------


def parse(data: bytes | str, fmt: BulkFormat) -> Parsed:
    return parse_csv(data) if fmt is BulkFormat.CSV else parse_geojson(data)


def export(records: Iterable[DeviceRecord], fmt: BulkFormat, *, public: bool = False) -> str:
    return export_csv(records, public=public) if fmt is BulkFormat.CSV else export_geojson(records, public=public)


def field_name(loc: Sequence[int | str], fmt: BulkFormat) -> str:
    """A pydantic error location as the file names it: ``lat`` (CSV) or
    ``geometry.coordinates[1]`` (GeoJSON) for ``location.lat``; ``properties.x`` for other GeoJSON fields."""
    head = str(loc[0]) if loc else "?"
    if head == "location":
        sub = str(loc[1]) if len(loc) > 1 else ""
        if fmt is BulkFormat.CSV:
            return sub if sub in {"lon", "lat"} else "lon"
        return f"geometry.coordinates[{0 if sub == 'lon' else 1}]" if sub in {"lon", "lat"} else "geometry"
    if fmt is BulkFormat.GEOJSON and head != "id":
        return f"properties.{head}"
    return head


def validation_errors(exc: ValidationError, row: Row, fmt: BulkFormat) -> list[RowError]:
    """A pydantic error of a row's values, one :class:`RowError` per field."""
    return [
        RowError(row.where, error["msg"].removeprefix("Value error, "), row.device_id, field_name(error["loc"], fmt))
        for error in exc.errors(include_url=False)
    ]


def check_create(row: Row, fmt: BulkFormat) -> DeviceCreate | list[RowError]:
    try:
        return DeviceCreate.model_validate({"id": row.device_id, **row.values})
    except ValidationError as exc:
        return validation_errors(exc, row, fmt)
