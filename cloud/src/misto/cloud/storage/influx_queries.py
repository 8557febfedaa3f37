"""InfluxQL text and answers for the InfluxDB store: quoting, time ranges, the statements the reads
send and the rows they get back. No I/O here.

Times in InfluxQL are nanoseconds unless they carry a unit, so every bound is written ``<n>ms``.
Identifiers are always double-quoted and string literals single-quoted, with backslash escapes,
so device and gateway names with spaces, quotes or non-ASCII letters stay intact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from misto.cloud.storage.influx_http import StatementResult

ROLLUP_FIELD: Final = re.compile(r"^(mean|min|max|count|last|sum)_")


def ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def literal(value: str) -> str:
    """A single-quoted InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def time_range(start_ms: int, end_ms: int) -> str:
    """``[start, end)`` in milliseconds since the epoch."""
    return f"time >= {start_ms}ms AND time < {end_ms}ms"


def sources(rp: str, measurements: Iterable[str]) -> str:
    return ", ".join(f"{ident(rp)}.{ident(m)}" for m in measurements)


def where(*conditions: str | None) -> str:
    used = [c for c in conditions if c]
    return f" WHERE {' AND '.join(used)}" if used else ""


def tag_is(tag: str, value: str | None) -> str | None:
    return None if value is None else f"{ident(tag)} = {literal(value)}"


@dataclass(frozen=True, slots=True)
class Row:
    """One row of an answer: the series' measurement and tags, and the row's columns by name."""

    measurement: str
    tags: Mapping[str, str]
    values: Mapping[str, Any]

    @property
    def time(self) -> int:
        return int(self.values["time"])


def rows(result: StatementResult) -> Iterator[Row]:
    for series in result.series:
        columns = series["columns"]
        tags = series.get("tags") or {}
        for values in series.get("values", []):
            yield Row(series.get("name", ""), tags, dict(zip(columns, values, strict=True)))


def field_keys(result: StatementResult) -> dict[str, list[str]]:
    """``SHOW FIELD KEYS`` -> reading fields by measurement (rollup fields left out: InfluxDB 1.x
    lists the field keys of every retention policy together)."""
    out: dict[str, list[str]] = {}
    for row in rows(result):
        key = str(row.values["fieldKey"])
        if not ROLLUP_FIELD.match(key):
            out.setdefault(row.measurement, []).append(key)
    return out


def measurements_by_field(keys: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Invert :func:`field_keys`: the measurements that hold each field, in a stable order."""
    out: dict[str, list[str]] = {}
    for measurement in sorted(keys):
        for key in keys[measurement]:
            out.setdefault(key, []).append(measurement)
    return out


def select_last(
    field: str, rp: str, measurements: Sequence[str], *, device: str | None, column: str | None = None
) -> str:
    """The newest value (and its real time) of ``field`` per device and gateway."""
    return (
        f"SELECT last({ident(column or field)}) AS {ident('value')} FROM {sources(rp, measurements)}"
        f"{where(tag_is('device', device))} GROUP BY {ident('device')}, {ident('gateway')}"
    )


def select_first(
    field: str, rp: str, measurements: Sequence[str], *, device: str | None, column: str | None = None
) -> str:
    return (
        f"SELECT first({ident(column or field)}) AS {ident('value')} FROM {sources(rp, measurements)}"
        f"{where(tag_is('device', device))} GROUP BY {ident('device')}, {ident('gateway')}"
    )


def select_windows(
    field: str,
    rp: str,
    measurements: Sequence[str],
    *,
    device: str,
    start_ms: int,
    end_ms: int,
    every_ms: int,
    raw: bool,
) -> str:
    """sum, count, min, max, last per epoch-aligned window, empty windows left out."""
    if raw:
        f = ident(field)
        columns = f"sum({f}), count({f}), min({f}), max({f}), last({f})"
    else:
        columns = (
            f"sum({ident('sum_' + field)}), sum({ident('count_' + field)}), min({ident('min_' + field)}),"
            f" max({ident('max_' + field)}), last({ident('last_' + field)})"
        )
    return (
        f"SELECT {columns} FROM {sources(rp, measurements)}"
        f"{where(tag_is('device', device), time_range(start_ms, end_ms))}"
        f" GROUP BY time({every_ms}ms) fill(none)"
    )


def select_last_time(column: str, rp: str, measurement: str, *, device: str, start_ms: int, end_ms: int) -> str:
    """The real time of the newest value in a window (to choose between measurements)."""
    return (
        f"SELECT last({ident(column)}) FROM {ident(rp)}.{ident(measurement)}"
        f"{where(tag_is('device', device), time_range(start_ms, end_ms))}"
    )
