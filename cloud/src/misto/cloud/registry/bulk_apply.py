"""Bulk import and export of devices over the :class:`RegistryRepository` interface (any database).

An import first checks every row, against the models (as the API would) and against the registry
(the gateway and device model exist, the kind matches the model's, ids repeat neither in the file
nor, in create mode, in the registry, the ``version`` given is the stored one), and reports every
bad row. A dry run stops there. A real import writes only when no row is bad: it creates and
updates the devices one by one, each audited with the actor; if a write is refused because the
registry changed meanwhile (another operator, a concurrent import), the writes already made are
undone (audited too: a delete, or an update back to the previous values) and the import ends as a
conflict, so an import is all or nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from misto.cloud.registry.bulk import (
    CREATE_COLUMNS,
    FIELDS,
    BulkFormat,
    Parsed,
    Row,
    RowError,
    check_create,
    export,
    field_name,
    parse,
)
from misto.cloud.registry.errors import RegistryClosedError, RegistryError, RegistryUnavailableError
from misto.cloud.registry.models import (
    DeviceCreate,
    DeviceModelRecord,
    DeviceRecord,
    DeviceUpdate,
    GatewayRecord,
    Page,
)
from misto.cloud.registry.repository import MAX_LIMIT, RegistryRepository

T = TypeVar("T")


class ImportMode(StrEnum):
    CREATE = "create"  # every row is a new device; an existing id is an error
    UPSERT = "upsert"  # new ids are created, existing ones updated to the row's values


class Outcome(StrEnum):
    VALIDATED = "validated"  # a dry run without errors: nothing written
    IMPORTED = "imported"  # every row written
    REFUSED = "refused"  # bad rows (listed): nothing written
    CONFLICT = "conflict"  # the registry changed during the import: what was written is undone


@dataclass(frozen=True, slots=True)
class ImportReport:
    format: BulkFormat
    mode: ImportMode
    dry_run: bool
    outcome: Outcome
    rows: int  # devices in the file (the good ones when there are errors)
    created: int  # would be created (dry run) or were
    updated: int
    unchanged: int
    errors: tuple[RowError, ...]


@dataclass(slots=True)
class Plan:
    creates: list[tuple[Row, DeviceCreate]] = field(default_factory=list)
    updates: list[tuple[Row, DeviceRecord, DeviceUpdate]] = field(default_factory=list)
    unchanged: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


async def _everything(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> list[T]:
    items: list[T] = []
    after: str | None = None
    while True:
        page = await fetch(after)
        items.extend(page.items)
        if page.next_after is None:
            return items
        after = page.next_after


async def all_devices(registry: RegistryRepository, *, public_only: bool = False) -> list[DeviceRecord]:
    return await _everything(lambda after: registry.list_devices(public_only=public_only, after=after, limit=MAX_LIMIT))


async def all_gateways(registry: RegistryRepository) -> list[GatewayRecord]:
    return await _everything(lambda after: registry.list_gateways(after=after, limit=MAX_LIMIT))


async def all_models(registry: RegistryRepository) -> list[DeviceModelRecord]:
    return await _everything(lambda after: registry.list_models(after=after, limit=MAX_LIMIT))


async def plan_import(registry: RegistryRepository, parsed: Parsed, fmt: BulkFormat, mode: ImportMode) -> Plan:
    """Check every row against the models and the registry; nothing is written."""
    plan = Plan(errors=list(parsed.errors))
    if mode is ImportMode.CREATE and fmt is BulkFormat.CSV and parsed.columns:
        for name in CREATE_COLUMNS:
            if name not in parsed.columns:
                plan.errors.append(RowError("header", "missing column (required in create mode)", field=name))
    existing = {record.id: record for record in await all_devices(registry)}
    gateways = {record.id for record in await all_gateways(registry)}
    models = {record.id: record for record in await all_models(registry)}
    for row in parsed.rows:
        _plan_row(plan, row, existing.get(row.device_id), gateways, models, fmt, mode)
    return plan


def _plan_row(  # noqa: PLR0917 - one row's context
    plan: Plan,
    row: Row,
    record: DeviceRecord | None,
    gateways: set[str],
    models: dict[str, DeviceModelRecord],
    fmt: BulkFormat,
    mode: ImportMode,
) -> None:
    def error(name: str, message: str) -> None:
        plan.errors.append(RowError(row.where, message, row.device_id, field_name((name,), fmt)))

    if record is not None and mode is ImportMode.CREATE:
        error("id", "already exists (use mode upsert to update existing devices)")
        return
    values = dict(row.values)
    if record is not None:
        if row.version is not None and row.version != record.version:
            error("version", f"the device is at version {record.version}, not {row.version}: export it again")
            return
        current: dict[str, Any] = {name: getattr(record, name) for name in FIELDS}
        if "model_id" in values and "kind" not in values:
            current["kind"] = None  # follows the new model
        values = {**current, **values}
    checked = check_create(Row(row.where, row.device_id, values, row.version), fmt)
    if isinstance(checked, list):
        plan.errors.extend(checked)
        return
    before = len(plan.errors)
    if checked.gateway_id not in gateways:
        error("gateway_id", f"gateway {checked.gateway_id!r} not found")
    model = models.get(checked.model_id)
    if model is None:
        error("model_id", f"device model {checked.model_id!r} not found")
    elif checked.kind is not None and checked.kind is not model.kind:
        error("kind", f"{checked.kind} does not match the kind of model {model.id!r} ({model.kind})")
    if len(plan.errors) > before or model is None:
        return
    if record is None:
        plan.creates.append((row, checked))
        return
    desired = {name: getattr(checked, name) for name in FIELDS} | {"kind": checked.kind or model.kind}
    changes = {name: value for name, value in desired.items() if value != getattr(record, name)}
    if changes:
        plan.updates.append((row, record, DeviceUpdate.model_validate(changes)))
    else:
        plan.unchanged.append(row)


async def import_devices(
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
    parsed = parse(data, fmt)
    plan = await plan_import(registry, parsed, fmt, mode)

    def report(outcome: Outcome, errors: list[RowError]) -> ImportReport:
        return ImportReport(
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
    conflict = await _write(registry, plan, actor)
    return report(Outcome.CONFLICT, conflict) if conflict else report(Outcome.IMPORTED, [])


async def _write(registry: RegistryRepository, plan: Plan, actor: str) -> list[RowError]:
    done: list[tuple[DeviceRecord | None, DeviceRecord]] = []
    current: Row | None = None
    try:
        for current, data in plan.creates:  # noqa: B007 - ``current`` names the failed row below
            done.append((None, await registry.create_device(data, actor=actor)))
        for current, record, changes in plan.updates:  # noqa: B007
            after = await registry.update_device(record.id, changes, version=record.version, actor=actor)
            done.append((record, after))
    except (RegistryUnavailableError, RegistryClosedError):
        await _undo(registry, done, actor)
        raise
    except RegistryError as exc:
        where, device = (current.where, current.device_id) if current else ("file", None)
        problems = [RowError(where, f"the registry changed during the import: {exc}", device)]
        return problems + await _undo(registry, done, actor)
    return []


async def _undo(
    registry: RegistryRepository, done: list[tuple[DeviceRecord | None, DeviceRecord]], actor: str
) -> list[RowError]:
    """Revert the writes of a failed import, newest first; what could not be reverted is listed."""
    left: list[RowError] = []
    for before, after in reversed(done):
        try:
            if before is None:
                await registry.delete_device(after.id, version=after.version, actor=actor)
            else:
                back = {name: getattr(before, name) for name in FIELDS if getattr(before, name) != getattr(after, name)}
                await registry.update_device(
                    after.id, DeviceUpdate.model_validate(back), version=after.version, actor=actor
                )
        except RegistryError as exc:
            left.append(RowError("undo", f"could not undo the import's change: {exc}", after.id))
    return left


async def export_devices(registry: RegistryRepository, fmt: BulkFormat, *, public: bool = False) -> str:
    """Every device (only public ones, without private fields, when ``public``), ordered by id."""
    return export(await all_devices(registry, public_only=public), fmt, public=public)
