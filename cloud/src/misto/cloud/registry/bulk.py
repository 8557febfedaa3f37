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

The work is split by format: :mod:`misto.cloud.registry.bulk_rows` holds what both share (the
:class:`Table`, :class:`Row`, :class:`RowError`, the size limits), :mod:`misto.cloud.registry.bulk_csv`
and :mod:`misto.cloud.registry.bulk_geojson` parse and format one format each, and this module
picks the format and turns a pydantic error of a row into :class:`RowError` named as the file
names the field; it is the one to import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ValidationError

from misto.cloud.registry.bulk_csv import LIST_SEPARATOR, export_csv, parse_csv
from misto.cloud.registry.bulk_geojson import export_geojson, parse_geojson
from misto.cloud.registry.bulk_rows import (
    MAX_BYTES,
    MAX_ROWS,
    POSITION,
    BulkFormat,
    Parsed,
    Row,
    RowError,
    Table,
    UnsupportedFormatError,
)

__all__ = [
    "LIST_SEPARATOR",
    "MAX_BYTES",
    "MAX_ROWS",
    "BulkFormat",
    "Parsed",
    "Row",
    "RowError",
    "Table",
    "UnsupportedFormatError",
    "check_create",
    "export",
    "export_csv",
    "export_geojson",
    "field_name",
    "parse",
    "parse_csv",
    "parse_geojson",
    "validation_errors",
]


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
            return sub if sub in POSITION else "lon"
        return f"geometry.coordinates[{0 if sub == 'lon' else 1}]" if sub in POSITION else "geometry"
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
