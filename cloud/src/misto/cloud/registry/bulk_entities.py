"""What bulk import and export know of each entity, declared once: its :class:`Table` (columns,
create and update models, how a record flattens into cells), the repository calls that list,
create, update and delete it, and the :class:`Rules` that check a row against the rest of the
registry. :mod:`misto.cloud.registry.bulk_apply` runs any of them the same way.

A whole city is imported in dependency order: device models, then gateways, then devices (a
device names its gateway and model, which must already be in the registry: a dry run of devices
sees only what the registry holds, not another file).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from misto.cloud.registry.bulk_rows import Table
from misto.cloud.registry.models import (
    DeviceCreate,
    DeviceModelCreate,
    DeviceModelRecord,
    DeviceModelUpdate,
    DeviceRecord,
    DeviceUpdate,
    GatewayCreate,
    GatewayRecord,
    GatewayUpdate,
    Page,
)
from misto.cloud.registry.repository import MAX_LIMIT, RegistryRepository

T = TypeVar("T")


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


async def all_gateways(registry: RegistryRepository, *, public_only: bool = False) -> list[GatewayRecord]:
    return await _everything(
        lambda after: registry.list_gateways(public_only=public_only, after=after, limit=MAX_LIMIT)
    )


async def all_models(registry: RegistryRepository) -> list[DeviceModelRecord]:
    return await _everything(lambda after: registry.list_models(after=after, limit=MAX_LIMIT))


class Rules:
    """How rows of an entity are checked against the registry beyond their own model (the
    default: not at all). Built fresh for each import from what the registry holds."""

    def merge(self, record: Any, values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        """An existing record's fields with the row's values over them (an upsert row)."""
        return {**{name: getattr(record, name) for name in fields}, **values}

    def check(self, checked: Any, record: Any | None) -> list[tuple[str, str]]:
        """(field, message) of every problem of a valid row (``record``: the stored one, if any)."""
        del checked, record
        return []

    def desired(self, checked: Any, fields: tuple[str, ...]) -> dict[str, Any]:
        """The fields the record should have after the import (compared with the stored ones)."""
        return {name: getattr(checked, name) for name in fields}


class _DeviceRules(Rules):
    """The gateway and the model exist; the kind is the model's (empty: the model's)."""

    def __init__(self, gateways: set[str], models: dict[str, DeviceModelRecord]) -> None:
        self.gateways = gateways
        self.models = models

    def merge(self, record: Any, values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        current = {name: getattr(record, name) for name in fields}
        if "model_id" in values and "kind" not in values:
            current["kind"] = None  # follows the new model
        return {**current, **values}

    def check(self, checked: Any, record: Any | None) -> list[tuple[str, str]]:
        device: DeviceCreate = checked
        found = []
        if device.gateway_id not in self.gateways:
            found.append(("gateway_id", f"gateway {device.gateway_id!r} not found"))
        model = self.models.get(device.model_id)
        if model is None:
            found.append(("model_id", f"device model {device.model_id!r} not found"))
        elif device.kind is not None and device.kind is not model.kind:
            found.append(("kind", f"{device.kind} does not match the kind of model {model.id!r} ({model.kind})"))
        return found

    def desired(self, checked: Any, fields: tuple[str, ...]) -> dict[str, Any]:
        device: DeviceCreate = checked
        return super().desired(device, fields) | {"kind": device.kind or self.models[device.model_id].kind}


async def _device_rules(registry: RegistryRepository) -> Rules:
    gateways = {record.id for record in await all_gateways(registry)}
    return _DeviceRules(gateways, {record.id: record for record in await all_models(registry)})


class _ModelRules(Rules):
    """A model's kind cannot change while devices of that model exist (they carry its kind)."""

    def __init__(self, devices_of: Counter[str]) -> None:
        self.devices_of = devices_of

    def check(self, checked: Any, record: Any | None) -> list[tuple[str, str]]:
        model: DeviceModelCreate = checked
        count = self.devices_of[model.id]
        if record is not None and model.kind is not record.kind and count:
            return [("kind", f"{count} device(s) of model {model.id!r} have kind {record.kind.value!r}")]
        return []


async def _model_rules(registry: RegistryRepository) -> Rules:
    return _ModelRules(Counter(device.model_id for device in await all_devices(registry)))


async def _no_rules(registry: RegistryRepository) -> Rules:
    del registry
    return Rules()


@dataclass(frozen=True, slots=True)
class BulkEntity:
    """One entity for bulk import and export: its file :class:`Table` and its repository calls."""

    name: str  # in URLs and on the CLI: "devices", "gateways", "device-models"
    table: Table
    records: Callable[[RegistryRepository, bool], Awaitable[list[Any]]]  # every one (public only), by id
    create: Callable[[RegistryRepository, Any, str], Awaitable[Any]]  # (registry, create model, actor)
    update: Callable[[RegistryRepository, str, Any, int, str], Awaitable[Any]]  # (.., id, changes, version, actor)
    delete: Callable[[RegistryRepository, str, int, str], Awaitable[None]]  # (.., id, version, actor)
    rules: Callable[[RegistryRepository], Awaitable[Rules]] = _no_rules

    def changes(self, values: dict[str, Any]) -> BaseModel:
        return self.table.update_model.model_validate(values)


def _point(record: DeviceRecord | GatewayRecord) -> dict[str, object]:
    location = record.location
    return {"lon": location.lon if location else None, "lat": location.lat if location else None}


def _device_cells(record: DeviceRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "gateway_id": record.gateway_id,
        "model_id": record.model_id,
        "kind": record.kind.value,
        "install_date": record.install_date.isoformat() if record.install_date else None,
        **_point(record),
        "district": record.district,
        "organisation": record.organisation,
        "owner_contact": record.owner_contact,
        "visibility": record.visibility.value,
        "status": record.status.value,
        "notes": record.notes,
        "version": record.version,
    }


def _gateway_cells(record: GatewayRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "name": record.name,
        **_point(record),
        "district": record.district,
        "organisation": record.organisation,
        "owner_contact": record.owner_contact,
        "visibility": record.visibility.value,
        "status": record.status.value,
        "notes": record.notes,
        "version": record.version,
    }


def _model_cells(record: DeviceModelRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "kind": record.kind.value,
        "manufacturer": record.manufacturer,
        "name": record.name,
        "profile": record.profile,
        "metrics": record.metrics,
        "version": record.version,
    }


DEVICES: Final = BulkEntity(
    name="devices",
    table=Table(
        noun="device",
        columns=(
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
        ),
        create_model=DeviceCreate,
        update_model=DeviceUpdate,
        flat=_device_cells,
        private=frozenset({"owner_contact", "notes", "version"}),
        create_columns=("gateway_id", "model_id", "organisation"),
    ),
    records=lambda registry, public: all_devices(registry, public_only=public),
    create=lambda registry, data, actor: registry.create_device(data, actor=actor),
    update=lambda registry, id_, changes, version, actor: registry.update_device(
        id_, changes, version=version, actor=actor
    ),
    delete=lambda registry, id_, version, actor: registry.delete_device(id_, version=version, actor=actor),
    rules=_device_rules,
)

GATEWAYS: Final = BulkEntity(
    name="gateways",
    table=Table(
        noun="gateway",
        columns=(
            "id",
            "name",
            "lon",
            "lat",
            "district",
            "organisation",
            "owner_contact",
            "visibility",
            "status",
            "notes",
            "version",
        ),
        create_model=GatewayCreate,
        update_model=GatewayUpdate,
        flat=_gateway_cells,
        private=frozenset({"owner_contact", "notes", "version"}),
        create_columns=("name", "organisation"),
    ),
    records=lambda registry, public: all_gateways(registry, public_only=public),
    create=lambda registry, data, actor: registry.create_gateway(data, actor=actor),
    update=lambda registry, id_, changes, version, actor: registry.update_gateway(
        id_, changes, version=version, actor=actor
    ),
    delete=lambda registry, id_, version, actor: registry.delete_gateway(id_, version=version, actor=actor),
)

DEVICE_MODELS: Final = BulkEntity(
    name="device-models",
    table=Table(
        noun="device model",
        columns=("id", "kind", "manufacturer", "name", "profile", "metrics", "version"),
        create_model=DeviceModelCreate,
        update_model=DeviceModelUpdate,
        flat=_model_cells,
        private=frozenset({"version"}),  # the catalogue is public as a whole
        create_columns=("kind", "manufacturer", "name"),
        list_columns=frozenset({"metrics"}),
    ),
    records=lambda registry, public: all_models(registry),
    create=lambda registry, data, actor: registry.create_model(data, actor=actor),
    update=lambda registry, id_, changes, version, actor: registry.update_model(
        id_, changes, version=version, actor=actor
    ),
    delete=lambda registry, id_, version, actor: registry.delete_model(id_, version=version, actor=actor),
    rules=_model_rules,
)

#: In import order for a whole city (each names only entities before it).
ENTITIES: Final = {entity.name: entity for entity in (DEVICE_MODELS, GATEWAYS, DEVICES)}
