"""The model both bulk file formats share: the :class:`Table` that says how one entity's records
appear in a file, the :class:`Row` a file gives for each record, the :class:`RowError` for each
problem (collected by :class:`Errors`, nothing raised for bad content), and the steps
:mod:`misto.cloud.registry.bulk_csv` and :mod:`misto.cloud.registry.bulk_geojson` share: decode
the file under the size limit, refuse too many records, read a record's ``version`` into its
:class:`Row`, and refuse a second row of the same id. Pure: no I/O, no registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel

from misto.cloud.registry.errors import RegistryError

MAX_BYTES: Final = 10 * 1024 * 1024
MAX_ROWS: Final = 10_000
POSITION: Final = frozenset({"lon", "lat"})


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
        return tuple(name for name in self.columns if name not in POSITION)


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
class Errors:
    """Collects :class:`RowError` of one table (so each names its noun)."""

    table: Table
    found: list[RowError]

    def add(self, where: str, message: str, record: str | None = None, name: str | None = None) -> None:
        self.found.append(RowError(where, message, record, name, self.table.noun))


def decode(data: bytes | str, errors: Errors) -> str | None:
    """The file's text, or None after an error (over :data:`MAX_BYTES`, not UTF-8, a NUL)."""
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


def too_many(count: int, unit: str, errors: Errors) -> bool:
    """Whether ``count`` records (``rows``, ``features``) pass :data:`MAX_ROWS` (an error if so)."""
    if count > MAX_ROWS:
        errors.add("file", f"has {count} {unit}; the limit is {MAX_ROWS} (split the file)")
        return True
    return False


def show(raw: object, limit: int = 40) -> str:
    """A value for a message, cut to ``limit`` characters."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def new_row(where: str, record_id: str, values: dict[str, Any], raw_version: object, errors: Errors) -> Row | None:
    """The row, or None when its ``version`` cell (``raw_version``) is not a version."""
    ok, version = _version(raw_version, where, record_id, errors)
    return Row(where, record_id, values, version) if ok else None


def _version(raw: object, where: str, record_id: str, errors: Errors) -> tuple[bool, int | None]:
    if raw is None or raw == "":
        return True, None
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit() and len(raw.strip()) <= 18:
        number = int(raw)
        if number >= 1:
            return True, number
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return True, raw
    errors.add(where, f"{show(raw)} is not a version (an integer from 1)", record_id, "version")
    return False, None


def unique(rows: Iterable[Row | None], errors: Errors) -> Iterator[Row]:
    """The good rows (None is a bad one) but a second row of an id already seen (an error each)."""
    seen: dict[str, str] = {}
    for found in rows:
        if found is None:
            continue
        first = seen.setdefault(found.record_id, found.where)
        if first != found.where:
            errors.add(found.where, f"duplicate id: {found.record_id!r} is also at {first}", found.record_id, "id")
            continue
        yield found
