"""Bulk import and export of registry records (devices, gateways, device models: each a
:class:`~misto.cloud.registry.bulk_entities.BulkEntity`) over the :class:`RegistryRepository`
interface (any database).

An import first checks every row, against the models (as the API would) and against the registry
(for devices: the gateway and device model exist and the kind matches the model's; for device
models: a kind does not change under existing devices; for all: ids repeat neither in the file
nor, in create mode, in the registry, the ``version`` given is the stored one), and reports every
bad row. A dry run stops there. A real import writes only when no row is bad: it creates and
updates the records one by one, each audited with the actor; if a write is refused because the
registry changed meanwhile (another operator, a concurrent import), the writes already made are
undone (audited too: a delete, or an update back to the previous values) and the import ends as a
conflict, so an import is all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from misto.cloud.registry.bulk import (
    BulkFormat,
    Parsed,
    Row,
    RowError,
    UnsupportedFormatError,
    check_create,
    export,
    field_name,
    parse,
)
from misto.cloud.registry.bulk_entities import (
    BulkEntity,
    Rules,
    all_devices,
    all_gateways,
    all_models,
)
from misto.cloud.registry.errors import RegistryClosedError, RegistryError, RegistryUnavailableError
from misto.cloud.registry.repository import RegistryRepository

__all__ = [
    "ImportMode",
    "ImportReport",
    "Outcome",
    "Plan",
    "all_devices",
    "all_gateways",
    "all_models",
    "export_records",
    "import_records",
    "plan_import",
]


class ImportMode(StrEnum):
    CREATE = "create"  # every row is a new record; an existing id is an error
    UPSERT = "upsert"  # new ids are created, existing ones updated to the row's values


class Outcome(StrEnum):
    VALIDATED = "validated"  # a dry run without errors: nothing written
    IMPORTED = "imported"  # every row written
    REFUSED = "refused"  # bad rows (listed): nothing written
    CONFLICT = "conflict"  # the registry changed during the import: what was written is undone


@dataclass(frozen=True, slots=True)
class ImportReport:
    entity: str  # "devices", "gateways", "device-models"
    format: BulkFormat
    mode: ImportMode
    dry_run: bool
    outcome: Outcome
    rows: int  # records in the file (the good ones when there are errors)
    created: int  # would be created (dry run) or were
    updated: int
    unchanged: int
    errors: tuple[RowError, ...]


@dataclass(slots=True)
class Plan:
    creates: list[tuple[Row, BaseModel]] = field(default_factory=list)
    updates: list[tuple[Row, Any, BaseModel]] = field(default_factory=list)  # (row, record, changes)
    unchanged: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


async def plan_import(
    entity: BulkEntity, registry: RegistryRepository, parsed: Parsed, fmt: BulkFormat, mode: ImportMode
) -> Plan:
    """Check every row against the models and the registry; nothing is written."""
    plan = Plan(errors=list(parsed.errors))
    noun = entity.table.noun
    if mode is ImportMode.CREATE and fmt is BulkFormat.CSV and parsed.columns:
        for name in entity.table.create_columns:
            if name not in parsed.columns:
                plan.errors.append(RowError("header", "missing column (required in create mode)", None, name, noun))
    existing = {record.id: record for record in await entity.records(registry, False)}
    rules = await entity.rules(registry)
    for row in parsed.rows:
        _plan_row(plan, entity, rules, row, existing.get(row.record_id), fmt, mode)
    return plan


def _plan_row(  # noqa: PLR0917 - one row's context
    plan: Plan, entity: BulkEntity, rules: Rules, row: Row, record: Any | None, fmt: BulkFormat, mode: ImportMode
) -> None:
    table = entity.table

    def error(name: str, message: str) -> None:
        plan.errors.append(RowError(row.where, message, row.record_id, field_name((name,), fmt), table.noun))

    if record is not None and mode is ImportMode.CREATE:
        error("id", f"already exists (use mode upsert to update existing {table.noun}s)")
        return
    values = dict(row.values)
    if record is not None:
        if row.version is not None and row.version != record.version:
            error("version", f"the {table.noun} is at version {record.version}, not {row.version}: export it again")
            return
        values = rules.merge(record, values, table.fields)
    checked = check_create(table, Row(row.where, row.record_id, values, row.version), fmt)
    if isinstance(checked, list):
        plan.errors.extend(checked)
        return
    problems = rules.check(checked, record)
    for name, message in problems:
        error(name, message)
    if problems:
        return
    if record is None:
        plan.creates.append((row, checked))
        return
    desired = rules.desired(checked, table.fields)
    changes = {name: value for name, value in desired.items() if value != getattr(record, name)}
    if changes:
        plan.updates.append((row, record, entity.changes(changes)))
    else:
        plan.unchanged.append(row)


async def import_records(
    entity: BulkEntity,
    registry: RegistryRepository,
    data: bytes | str,
    *,
    fmt: BulkFormat,
    mode: ImportMode,
    dry_run: bool,
    actor: str,
) -> ImportReport:
    """Parse, check and (unless ``dry_run`` or anything is wrong) write. Raises only
    :class:`RegistryUnavailableError` / :class:`RegistryClosedError` (after undoing what it wrote)."""
    parsed = parse(entity.table, data, fmt)
    plan = await plan_import(entity, registry, parsed, fmt, mode)

    def report(outcome: Outcome, errors: list[RowError]) -> ImportReport:
        return ImportReport(
            entity=entity.name,
            format=fmt,
            mode=mode,
            dry_run=dry_run,
            outcome=outcome,
            rows=len(parsed.rows),
            created=len(plan.creates),
            updated=len(plan.updates),
            unchanged=len(plan.unchanged),
            errors=tuple(errors),
        )

    if plan.errors:
        return report(Outcome.REFUSED, plan.errors)
    if dry_run:
        return report(Outcome.VALIDATED, [])
    conflict = await _write(entity, registry, plan, actor)
    return report(Outcome.CONFLICT, conflict) if conflict else report(Outcome.IMPORTED, [])


async def _write(entity: BulkEntity, registry: RegistryRepository, plan: Plan, actor: str) -> list[RowError]:
    done: list[tuple[Any | None, Any]] = []
    current: Row | None = None
    try:
        for current, data in plan.creates:  # noqa: B007 - ``current`` names the failed row below
            done.append((None, await entity.create(registry, data, actor)))
        for current, record, changes in plan.updates:  # noqa: B007
            done.append((record, await entity.update(registry, record.id, changes, record.version, actor)))
    except (RegistryUnavailableError, RegistryClosedError):
        await _undo(entity, registry, done, actor)
        raise
    except RegistryError as exc:
        where, record_id = (current.where, current.record_id) if current else ("file", None)
        problems = [
            RowError(where, f"the registry changed during the import: {exc}", record_id, None, entity.table.noun)
        ]
        return problems + await _undo(entity, registry, done, actor)
    return []


async def _undo(
    entity: BulkEntity, registry: RegistryRepository, done: list[tuple[Any | None, Any]], actor: str
) -> list[RowError]:
    """Revert the writes of a failed import, newest first; what could not be reverted is listed."""
    left: list[RowError] = []
    fields = entity.table.fields
    for before, after in reversed(done):
        try:
            if before is None:
                await entity.delete(registry, after.id, after.version, actor)
            else:
                back = {name: getattr(before, name) for name in fields if getattr(before, name) != getattr(after, name)}
                await entity.update(registry, after.id, entity.changes(back), after.version, actor)
        except RegistryError as exc:
            left.append(
                RowError("undo", f"could not undo the import's change: {exc}", after.id, None, entity.table.noun)
            )
    return left


async def export_records(
    entity: BulkEntity, registry: RegistryRepository, fmt: BulkFormat, *, public: bool = False
) -> str:
    """Every record (only public ones, without private fields, when ``public``), ordered by id.
    Raises :class:`~misto.cloud.registry.bulk.UnsupportedFormatError` for GeoJSON of device models."""
    if fmt not in entity.table.formats:
        raise UnsupportedFormatError(entity.table.noun, fmt)
    return export(entity.table, await entity.records(registry, public), fmt, public=public)
