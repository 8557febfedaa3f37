"""Bulk registry records as CSV or GeoJSON: parse a file into rows (every problem reported, nothing
raised for bad content) and format records for export. Pure: no I/O, no registry. What a file of
one entity looks like (its columns, models, how a record flattens into cells) is a :class:`Table`,
declared per entity in :mod:`misto.cloud.registry.bulk_entities`;
:mod:`misto.cloud.registry.bulk_apply` checks the rows against the registry and writes them.

CSV: UTF-8 (a byte-order mark is accepted), a header row naming the table's columns (``id``
always; columns left out are left unchanged on an existing record), one record per row, ``lon``
and ``lat`` together or not at all; an empty cell is "no value" (an empty list for a list column,
whose values are separated by ``;``). Rows are numbered as a spreadsheet shows them: the header is
row 1. GeoJSON (entities with a location only): a ``FeatureCollection`` of ``Feature`` objects
with a ``Point`` geometry (WGS 84, lon/lat) or ``null``, the id as the feature's ``id`` or
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from misto.cloud.registry.errors import RegistryError

MAX_BYTES: Final = 10 * 1024 * 1024
MAX_ROWS: Final = 10_000
LIST_SEPARATOR: Final = ";"
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r", "'")
_POSITION: Final = frozenset({"lon", "lat"})


class BulkFormat(StrEnum):
    CSV = "csv"
    GEOJSON = "geojson"


class UnsupportedFormatError(RegistryError):
    """A format an entity has no use for (GeoJSON of records without a location)."""

    def __init__(self, noun: str, fmt: BulkFormat) -> None:
        self.noun = noun
        self.format = fmt
        super().__init__(f"format: {noun}s have no location, so no {fmt}: use csv")


@dataclass(frozen=True, slots=True)
class Table:
    """How the records of one entity appear in a file.

    ``columns`` in export order, ``id`` first and ``version`` last (the record's version, checked
    on upsert when given), with ``lon`` and ``lat`` when the entity has a ``location``;
    ``private`` are left out of public exports; ``create_columns`` must be in a CSV header in
    create mode; ``list_columns`` hold several values (``;`` between them in CSV, an array in
    GeoJSON); ``flat`` gives a record's cells by column name.
    """

    noun: str  # "device", "gateway", "device model": in messages
    columns: tuple[str, ...]
    create_model: type[BaseModel]
    update_model: type[BaseModel]
    flat: Callable[[Any], dict[str, object]]
    private: frozenset[str] = frozenset({"version"})
    create_columns: tuple[str, ...] = ()
    list_columns: frozenset[str] = frozenset()

    @property
    def located(self) -> bool:
        return "lon" in self.columns

    @property
    def formats(self) -> tuple[BulkFormat, ...]:
        return tuple(BulkFormat) if self.located else (BulkFormat.CSV,)

    @property
    def fields(self) -> tuple[str, ...]:
        """The record fields a row may set (``location`` from lon/lat or the GeoJSON geometry)."""
        return tuple(self.update_model.model_fields)

    @property
    def properties(self) -> tuple[str, ...]:
        """The GeoJSON properties: the columns but the position (which is the geometry)."""
        return tuple(name for name in self.columns if name not in _POSITION)


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: where (``row 7``, ``features[3]``, ``header``, ``file``), which record (its
    id, and the ``noun`` of its entity), which field (a column or property name), and what is wrong."""

    where: str
    message: str
    record: str | None = None
    field: str | None = None
    noun: str = "device"

    def __str__(self) -> str:
        record = f" ({self.noun} {self.record})" if self.record else ""
        if self.field:
            return f"{self.where}{record}, {self.field}: {self.message}"
        return f"{self.where}{record}: {self.message}"


@dataclass(frozen=True, slots=True)
class Row:
    """One record as the file gives it: ``values`` holds only the fields the file sets (a field
    left out stays as it is on an existing record), ``location`` as a ``{lon, lat}`` dict or None."""

    where: str
    record_id: str
    values: Mapping[str, Any]
    version: int | None = None


@dataclass(slots=True)
class Parsed:
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    columns: frozenset[str] = frozenset()  # the fields the file names (header or any feature)


@dataclass(frozen=True, slots=True)
class _Errors:
    """Collects :class:`RowError` of one table (so each names its noun)."""

    table: Table
    found: list[RowError]

    def add(self, where: str, message: str, record: str | None = None, name: str | None = None) -> None:
        self.found.append(RowError(where, message, record, name, self.table.noun))


def _decode(data: bytes | str, errors: _Errors) -> str | None:
    if len(data) > MAX_BYTES:
        errors.add("file", f"is {len(data)} bytes; the limit is {MAX_BYTES} (split the file)")
        return None
    if isinstance(data, str):
        text = data.removeprefix("\ufeff")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            errors.add("file", f"is not UTF-8: byte {exc.start} ({data[exc.start]:#04x}) is invalid")
            return None
    if "\x00" in text:  # no database stores it in text, no spreadsheet writes it
        errors.add("file", f"contains a NUL character (at character {text.index(chr(0))})")
        return None
    return text


def _unescape(cell: str) -> str:
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


def _escape(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _duplicate(seen: dict[str, str], row: Row, errors: _Errors) -> bool:
    first = seen.setdefault(row.record_id, row.where)
    if first != row.where:
        errors.add(row.where, f"duplicate id: {row.record_id!r} is also at {first}", row.record_id, "id")
        return True
    return False


def _show(raw: object, limit: int = 40) -> str:
    """A value for a message, cut to ``limit`` characters."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _version(raw: object, where: str, record_id: str, errors: _Errors) -> tuple[bool, int | None]:
    if raw is None or raw == "":
        return True, None
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit() and len(raw.strip()) <= 18:
        number = int(raw)
        if number >= 1:
            return True, number
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return True, raw
    errors.add(where, f"{_show(raw)} is not a version (an integer from 1)", record_id, "version")
    return False, None


def _number(raw: str, name: str, where: str, record_id: str, errors: _Errors) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        errors.add(where, f"{_show(raw)} is not a number", record_id, name)
        return None
    if not math.isfinite(value):
        errors.add(where, f"{_show(raw)} is not a finite number", record_id, name)
        return None
    return value


# --- CSV ---------------------------------------------------------------------------------------


def parse_csv(table: Table, data: bytes | str) -> Parsed:
    """Every row of a CSV file, or the problems of the file, its header and each bad row."""
    out = Parsed()
    errors = _Errors(table, out.errors)
    text = _decode(data, errors)
    if text is None:
        return out
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        errors.add("file", f"is not valid CSV: {exc}")
        return out
    if not records or not any(cell.strip() for cell in records[0]):
        errors.add("header", f"missing: the first row must name the columns ({', '.join(table.columns)})")
        return out
    header = [cell.strip() for cell in records[0]]
    if not _check_header(table, header, errors):
        return out
    out.columns = frozenset("location" if name in _POSITION else name for name in header)
    body = records[1:]
    if len(body) > MAX_ROWS:
        errors.add("file", f"has {len(body)} rows; the limit is {MAX_ROWS} (split the file)")
        return out
    seen: dict[str, str] = {}
    for number, cells in enumerate(body, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line (spreadsheets add them at the end)
        row = _csv_row(table, f"row {number}", header, cells, errors)
        if row is not None and not _duplicate(seen, row, errors):
            out.rows.append(row)
    return out


def _check_header(table: Table, header: list[str], errors: _Errors) -> bool:
    before = len(errors.found)
    known = ", ".join(table.columns)
    for name in header:
        if name not in table.columns:
            errors.add("header", f"unknown column {name!r}; known: {known}", name=name)
    for name in sorted({name for name in header if header.count(name) > 1}):
        errors.add("header", f"column {name!r} appears {header.count(name)} times", name=name)
    if "id" not in header:
        errors.add("header", "missing required column", name="id")
    if ("lon" in header) != ("lat" in header):
        errors.add("header", "missing: lon and lat come together", name="lat" if "lon" in header else "lon")
    return len(errors.found) == before


def _csv_row(table: Table, where: str, header: list[str], cells: list[str], errors: _Errors) -> Row | None:
    cells = [_unescape(cell) for cell in cells]
    named = dict(zip(header, cells, strict=False))
    record_id = named.get("id", "").strip()
    if len(cells) != len(header):
        errors.add(where, f"has {len(cells)} cells; the header has {len(header)}", record_id or None)
        return None
    if not record_id:
        errors.add(where, f"required: every row names its {table.noun}", None, "id")
        return None
    values: dict[str, Any] = {}
    ok = True
    for name, cell in named.items():
        if name in {"id", "version", "lon", "lat"}:
            continue
        if name in table.list_columns:
            values[name] = tuple(part.strip() for part in cell.split(LIST_SEPARATOR) if part.strip())
        else:
            values[name] = cell if cell != "" else None
    if "lon" in named:
        lon_raw, lat_raw = named["lon"].strip(), named["lat"].strip()
        if lon_raw == "" and lat_raw == "":
            values["location"] = None
        elif lon_raw == "" or lat_raw == "":
            errors.add(where, "lon and lat are both set or both empty", record_id, "lon" if not lon_raw else "lat")
            ok = False
        else:
            lon = _number(lon_raw, "lon", where, record_id, errors)
            lat = _number(lat_raw, "lat", where, record_id, errors)
            ok = ok and lon is not None and lat is not None
            values["location"] = {"lon": lon, "lat": lat}
    version_ok, version = _version(named.get("version"), where, record_id, errors)
    if not (ok and version_ok):
        return None
    return Row(where, record_id, values, version)


def export_csv(table: Table, records: Iterable[object], *, public: bool = False) -> str:
    """Records as CSV (every column; the public export without the table's private columns)."""
    columns = [name for name in table.columns if not (public and name in table.private)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in records:
        cells = table.flat(record)
        writer.writerow([_cell(cells[name]) for name in columns])
    return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, tuple):
        return _escape(LIST_SEPARATOR.join(map(str, value)))
    return repr(value) if isinstance(value, float) else str(value)


# --- GeoJSON -----------------------------------------------------------------------------------


def parse_geojson(table: Table, data: bytes | str) -> Parsed:  # noqa: PLR0911 - one refusal per document problem
    """Every feature of a GeoJSON FeatureCollection, or the problems of the document and each feature."""
    out = Parsed()
    errors = _Errors(table, out.errors)
    if not table.located:
        errors.add("file", f"{table.noun}s have no location, so no GeoJSON: import them as CSV", name="format")
        return out
    text = _decode(data, errors)
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
    if len(features) > MAX_ROWS:
        errors.add("file", f"has {len(features)} features; the limit is {MAX_ROWS} (split the file)")
        return out
    seen: dict[str, str] = {}
    columns: set[str] = set()
    for index, feature in enumerate(features):
        row = _feature_row(table, f"features[{index}]", feature, errors)
        if row is not None and not _duplicate(seen, row, errors):
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


def _feature_row(table: Table, where: str, feature: object, errors: _Errors) -> Row | None:  # noqa: PLR0911 - one refusal each
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
        errors.add(where, f"feature id {_show(feature['id'])} differs from properties.id", None, "id")
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
    version_ok, version = _version(properties.get("version"), where, raw_id, errors)
    if not version_ok:
        return None
    return Row(where, raw_id, values, version)


def _point(where: str, record_id: str, geometry: object, errors: _Errors) -> tuple[dict[str, Any] | None, bool]:
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


# --- shared ------------------------------------------------------------------------------------


def parse(table: Table, data: bytes | str, fmt: BulkFormat) -> Parsed:
    return parse_csv(table, data) if fmt is BulkFormat.CSV else parse_geojson(table, data)


def export(table: Table, records: Iterable[object], fmt: BulkFormat, *, public: bool = False) -> str:
    """Raises :class:`UnsupportedFormatError` for GeoJSON of a table without a location."""
    if fmt is BulkFormat.CSV:
        return export_csv(table, records, public=public)
    return export_geojson(table, records, public=public)


def field_name(loc: Sequence[int | str], fmt: BulkFormat) -> str:
    """A pydantic error location as the file names it: ``lat`` (CSV) or
    ``geometry.coordinates[1]`` (GeoJSON) for ``location.lat``; ``properties.x`` for other GeoJSON
    fields; ``metrics`` for an item of a list column."""
    head = str(loc[0]) if loc else "?"
    if head == "location":
        sub = str(loc[1]) if len(loc) > 1 else ""
        if fmt is BulkFormat.CSV:
            return sub if sub in _POSITION else "lon"
        return f"geometry.coordinates[{0 if sub == 'lon' else 1}]" if sub in _POSITION else "geometry"
    if fmt is BulkFormat.GEOJSON and head != "id":
        return f"properties.{head}"
    return head


def validation_errors(table: Table, exc: ValidationError, row: Row, fmt: BulkFormat) -> list[RowError]:
    """A pydantic error of a row's values, one :class:`RowError` per field."""
    return [
        RowError(
            row.where,
            error["msg"].removeprefix("Value error, "),
            row.record_id,
            field_name(error["loc"], fmt),
            table.noun,
        )
        for error in exc.errors(include_url=False)
    ]


def check_create(table: Table, row: Row, fmt: BulkFormat) -> BaseModel | list[RowError]:
    """The row's values as the table's create model, or its errors."""
    try:
        return table.create_model.model_validate({"id": row.record_id, **row.values})
    except ValidationError as exc:
        return validation_errors(table, exc, row, fmt)
