"""Bulk registry records as CSV: parse a file into rows (the header checked against the
:class:`~misto.cloud.registry.bulk_rows.Table`, every problem reported) and format records as CSV,
a text cell that a spreadsheet would run as a formula escaped with a leading ``'`` on export and
unescaped on import (see :mod:`misto.cloud.registry.bulk` for the file format). Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import Any, Final

from misto.cloud.registry.bulk_rows import POSITION, Errors, Parsed, Row, Table, decode, new_row, show, too_many, unique

LIST_SEPARATOR: Final = ";"
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r", "'")


def parse_csv(table: Table, data: bytes | str) -> Parsed:
    """Every row of a CSV file, or the problems of the file, its header and each bad row."""
    out = Parsed()
    errors = Errors(table, out.errors)
    text = decode(data, errors)
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
    out.columns = frozenset("location" if name in POSITION else name for name in header)
    body = records[1:]
    if too_many(len(body), "rows", errors):
        return out
    rows = (
        _csv_row(table, f"row {number}", header, cells, errors)
        for number, cells in enumerate(body, start=2)
        if any(cell.strip() for cell in cells)  # else a blank line (spreadsheets add them at the end)
    )
    out.rows.extend(unique(rows, errors))
    return out


def _check_header(table: Table, header: list[str], errors: Errors) -> bool:
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


def _csv_row(table: Table, where: str, header: list[str], cells: list[str], errors: Errors) -> Row | None:
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
    found = new_row(where, record_id, values, named.get("version"), errors)  # its version checked even if not ok
    return found if ok else None


def _number(raw: str, name: str, where: str, record_id: str, errors: Errors) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        errors.add(where, f"{show(raw)} is not a number", record_id, name)
        return None
    if not math.isfinite(value):
        errors.add(where, f"{show(raw)} is not a finite number", record_id, name)
        return None
    return value


def _unescape(cell: str) -> str:
    if len(cell) > 1 and cell[0] == "'" and cell[1] in _FORMULA_START:
        return cell[1:]
    return cell


def _escape(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


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
