"""The registry on SQLAlchemy 2 Core: one implementation for SQLite (default, the embedded demo)
and PostgreSQL + PostGIS (production). Only this package imports SQLAlchemy and Alembic.

Why synchronous SQLAlchemy in worker threads rather than its asyncio extension: the blocking calls
run on a small thread pool (one thread for SQLite, a single writer anyway; a few for PostgreSQL,
matching the connection pool), as the other SQLite databases of the cloud service do, so the event
loop never waits on the database; Alembic, psycopg and pysqlite then run as designed, with no
greenlet bridging and no extra driver threads (aiosqlite) to track. The registry is small CRUD:
a thread hop per call costs nothing that matters.

Each call is one transaction. On SQLite transactions begin with ``BEGIN IMMEDIATE`` (a writer
takes the lock up front instead of failing on upgrade) and foreign keys are enforced; reads of a
record about to change use ``SELECT ... FOR UPDATE`` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc

from misto.cloud.registry import audit, layers_spatial
from misto.cloud.registry.engine import POSTGRES_WORKERS, create_engine
from misto.cloud.registry.errors import (
    AlreadyExistsError,
    InUseError,
    InvalidFieldError,
    NotFoundError,
    RegistryClosedError,
    RegistryError,
    RegistrySchemaError,
    RegistryUnavailableError,
    StaleVersionError,
    UnknownReferenceError,
)
from misto.cloud.registry.migrations import current, head, upgrade
from misto.cloud.registry.models import (
    AuditAction,
    AuditEntry,
    DeviceCreate,
    DeviceModelCreate,
    DeviceModelRecord,
    DeviceModelUpdate,
    DeviceRecord,
    DeviceUpdate,
    Entity,
    GatewayCreate,
    GatewayRecord,
    GatewayUpdate,
    NearbyDevice,
    Page,
    Visibility,
    check_actor,
)
from misto.cloud.registry.repository import DEFAULT_LIMIT, MAX_LIMIT
from misto.cloud.registry.rows import (
    Record,
    column_values,
    device_record,
    gateway_record,
    model_record,
    snapshot,
    utc,
)
from misto.cloud.registry.spatial import Spatial, check_box, check_point, check_radius, for_dialect
from misto.cloud.registry.tables import device_models, devices, gateways
from misto.protocol.vocabulary import SensorKind

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R", DeviceModelRecord, GatewayRecord, DeviceRecord)
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class _Kind(Generic[R]):
    entity: Entity
    label: str  # for messages: "device model"
    table: sa.Table
    record: Callable[[sa.Row[Any]], R]


_MODELS = _Kind(Entity.DEVICE_MODEL, "device model", device_models, model_record)
_GATEWAYS = _Kind(Entity.GATEWAY, "gateway", gateways, gateway_record)
_DEVICES = _Kind(Entity.DEVICE, "device", devices, device_record)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidFieldError("limit", f"{limit} must be between 1 and {MAX_LIMIT}")


class SqlRegistry:
    """:class:`~misto.cloud.registry.repository.RegistryRepository` on SQLite or PostgreSQL + PostGIS."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = _utcnow) -> None:
        self._engine = engine
        self._clock = clock
        self.dialect = engine.dialect.name
        workers = 1 if self.dialect == "sqlite" else POSTGRES_WORKERS
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="misto-registry")
        self._spatial: Spatial = for_dialect(self.dialect)
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, clock: Clock = _utcnow, migrate: bool = True) -> SqlRegistry:
        """Open the database at ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``) and
        migrate it to the newest schema (unless ``migrate`` is false: then it must be there already)."""
        registry = cls(create_engine(url), clock=clock)
        try:
            await registry._call("open", registry._prepare, migrate)
        except BaseException:
            await registry.close()
            raise
        return registry

    def _prepare(self, migrate: bool) -> None:
        if migrate:
            try:
                upgrade(self._engine)
            except exc.SQLAlchemyError:
                raise
            except Exception as error:  # Alembic: e.g. a revision this version does not know
                raise RegistrySchemaError(f"{type(error).__name__}: {error}") from error
        with self._engine.connect() as conn:
            found = current(conn)
        if found != head():
            raise RegistrySchemaError(f"database is at revision {found!r}, this version needs {head()!r}")

    async def __aenter__(self) -> SqlRegistry:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._engine.dispose)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._call("ping", self._run, lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())

    async def _call(self, operation: str, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise RegistryClosedError(operation)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(fn, *args))
        except RegistryError:
            raise
        except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
            raise RegistryUnavailableError(operation, f"{type(error).__name__}: {error.args[0]}") from error
        except exc.SQLAlchemyError as error:
            raise RegistryError(f"registry {operation} failed: {type(error).__name__}: {error}") from error

    def _run(self, fn: Callable[[sa.Connection], T]) -> T:
        with self._engine.begin() as conn:
            return fn(conn)

    # --- for modules that keep their own tables in the registry (credentials) -----------------

    def now(self) -> datetime:
        """The registry clock's time (UTC)."""
        return utc(self._clock())

    async def transaction(self, operation: str, fn: Callable[[sa.Connection], T], *, actor: str | None = None) -> T:
        """Run ``fn`` in one transaction on the registry's worker thread, with the registry's
        error translation (and, for a change, its check of ``actor``)."""
        if actor is not None:
            return await self._change(operation, actor, fn)
        return await self._call(operation, self._run, fn)

    # --- generic operations (run in the worker thread) --------------------------------------

    def _fetch(self, conn: sa.Connection, kind: _Kind[R], entity_id: str, *, lock: bool = False) -> R:
        query = sa.select(kind.table).where(kind.table.c.id == entity_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError(kind.label, entity_id)
        return kind.record(row)

    def _exists(self, conn: sa.Connection, table: sa.Table, entity_id: str) -> bool:
        return conn.execute(sa.select(table.c.id).where(table.c.id == entity_id)).first() is not None

    def _count(self, conn: sa.Connection, column: sa.Column[Any], value: str) -> int:
        return int(conn.execute(sa.select(sa.func.count()).where(column == value)).scalar_one())

    def _insert(self, conn: sa.Connection, kind: _Kind[R], fields: Mapping[str, Any], actor: str) -> R:
        entity_id = str(fields["id"])
        if self._exists(conn, kind.table, entity_id):
            raise AlreadyExistsError(kind.label, entity_id)
        now = utc(self._clock())
        try:
            conn.execute(kind.table.insert().values(**column_values(fields), version=1, created_at=now, updated_at=now))
        except exc.IntegrityError as error:  # a concurrent create of the same id
            if self._exists(conn, kind.table, entity_id):
                raise AlreadyExistsError(kind.label, entity_id) from error
            raise
        created = self._fetch(conn, kind, entity_id)
        self._audit(conn, kind, entity_id, action=AuditAction.CREATE, before=None, after=created, actor=actor, at=now)
        return created

    def _update(
        self,
        conn: sa.Connection,
        kind: _Kind[R],
        entity_id: str,
        *,
        fields: Mapping[str, Any],
        version: int,
        actor: str,
        check: Callable[[R, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> R:
        before = self._fetch(conn, kind, entity_id, lock=True)
        if before.version != version:
            raise StaleVersionError(kind.label, entity_id, version, before.version)
        changes = check(before, dict(fields)) if check is not None else dict(fields)
        now = utc(self._clock())
        table = kind.table
        done = conn.execute(
            table.update()
            .where(table.c.id == entity_id, table.c.version == version)
            .values(**column_values(changes), version=version + 1, updated_at=now)
        )
        if done.rowcount != 1:  # changed between our read and write (only without row locks)
            raise StaleVersionError(kind.label, entity_id, version, self._fetch(conn, kind, entity_id).version)
        after = self._fetch(conn, kind, entity_id)
        self._audit(conn, kind, entity_id, action=AuditAction.UPDATE, before=before, after=after, actor=actor, at=now)
        return after

    def _delete(
        self,
        conn: sa.Connection,
        kind: _Kind[R],
        entity_id: str,
        *,
        version: int | None,
        actor: str,
        users: Sequence[tuple[str, sa.Column[Any]]] = (),
    ) -> None:
        before = self._fetch(conn, kind, entity_id, lock=True)
        if version is not None and before.version != version:
            raise StaleVersionError(kind.label, entity_id, version, before.version)
        for label, column in users:
            if count := self._count(conn, column, entity_id):
                raise InUseError(kind.label, entity_id, label, count)
        conn.execute(kind.table.delete().where(kind.table.c.id == entity_id))
        at = utc(self._clock())
        self._audit(conn, kind, entity_id, action=AuditAction.DELETE, before=before, after=None, actor=actor, at=at)

    def _audit(
        self,
        conn: sa.Connection,
        kind: _Kind[R],
        entity_id: str,
        *,
        action: AuditAction,
        before: Record | None,
        after: Record | None,
        actor: str,
        at: datetime,
    ) -> None:
        audit.record_change(
            conn,
            at=at,
            actor=actor,
            entity=kind.entity,
            entity_id=entity_id,
            action=action,
            before=snapshot(before) if before is not None else None,
            after=snapshot(after) if after is not None else None,
        )

    def _page(
        self, conn: sa.Connection, kind: _Kind[R], where: list[sa.ColumnElement[bool]], after: str | None, limit: int
    ) -> Page[R]:
        table = kind.table
        if after is not None:
            where.append(table.c.id > after)
        rows = conn.execute(sa.select(table).where(*where).order_by(table.c.id).limit(limit + 1)).all()
        items = tuple(kind.record(row) for row in rows[:limit])
        return Page(items, items[-1].id if len(rows) > limit else None)

    async def _change(self, operation: str, actor: str, fn: Callable[[sa.Connection], T]) -> T:
        try:
            check_actor(actor)
        except ValueError as error:
            raise InvalidFieldError("actor", str(error)) from None
        return await self._call(operation, self._run, fn)

    # --- device models ------------------------------------------------------------------------

    async def create_model(self, data: DeviceModelCreate, *, actor: str) -> DeviceModelRecord:
        return await self._change("create_model", actor, lambda c: self._insert(c, _MODELS, dict(data), actor))

    async def get_model(self, model_id: str) -> DeviceModelRecord:
        return await self._call("get_model", self._run, lambda c: self._fetch(c, _MODELS, model_id))

    def _model_check(self, conn: sa.Connection, before: DeviceModelRecord, changes: dict[str, Any]) -> dict[str, Any]:
        kind = changes.get("kind", before.kind)
        if kind != before.kind and (count := self._count(conn, devices.c.model_id, before.id)):
            raise InvalidFieldError("kind", f"{count} device(s) of model {before.id!r} have kind {before.kind.value!r}")
        return changes

    async def update_model(
        self, model_id: str, changes: DeviceModelUpdate, *, version: int, actor: str
    ) -> DeviceModelRecord:
        return await self._change(
            "update_model",
            actor,
            lambda c: self._update(
                c,
                _MODELS,
                model_id,
                fields=changes.changes(),
                version=version,
                actor=actor,
                check=partial(self._model_check, c),
            ),
        )

    async def delete_model(self, model_id: str, *, version: int | None = None, actor: str) -> None:
        users = (("device", devices.c.model_id),)
        await self._change(
            "delete_model",
            actor,
            lambda c: self._delete(c, _MODELS, model_id, version=version, actor=actor, users=users),
        )

    async def list_models(
        self, *, kind: SensorKind | None = None, after: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[DeviceModelRecord]:
        _check_limit(limit)
        where = [] if kind is None else [device_models.c.kind == kind.value]
        return await self._call("list_models", self._run, lambda c: self._page(c, _MODELS, where, after, limit))

    # --- gateways -----------------------------------------------------------------------------

    async def create_gateway(self, data: GatewayCreate, *, actor: str) -> GatewayRecord:
        return await self._change("create_gateway", actor, lambda c: self._insert(c, _GATEWAYS, dict(data), actor))

    async def get_gateway(self, gateway_id: str) -> GatewayRecord:
        return await self._call("get_gateway", self._run, lambda c: self._fetch(c, _GATEWAYS, gateway_id))

    async def update_gateway(
        self, gateway_id: str, changes: GatewayUpdate, *, version: int, actor: str
    ) -> GatewayRecord:
        fields = changes.changes()
        return await self._change(
            "update_gateway",
            actor,
            lambda c: self._update(c, _GATEWAYS, gateway_id, fields=fields, version=version, actor=actor),
        )

    async def delete_gateway(self, gateway_id: str, *, version: int | None = None, actor: str) -> None:
        users = (("device", devices.c.gateway_id),)
        await self._change(
            "delete_gateway",
            actor,
            lambda c: self._delete(c, _GATEWAYS, gateway_id, version=version, actor=actor, users=users),
        )

    async def list_gateways(
        self,
        *,
        district: str | None = None,
        public_only: bool = False,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[GatewayRecord]:
        _check_limit(limit)
        where: list[sa.ColumnElement[bool]] = []
        if district is not None:
            where.append(gateways.c.district == district)
        if public_only:
            where.append(gateways.c.visibility == Visibility.PUBLIC.value)
        return await self._call("list_gateways", self._run, lambda c: self._page(c, _GATEWAYS, where, after, limit))

    # --- devices ------------------------------------------------------------------------------

    def _device_refs(self, conn: sa.Connection, fields: dict[str, Any], before: DeviceRecord | None) -> dict[str, Any]:
        """Check the gateway and model a device names; its kind defaults to, and must equal, the model's."""
        gateway_id = str(fields.get("gateway_id", before.gateway_id if before else ""))
        if "gateway_id" in fields and not self._exists(conn, gateways, gateway_id):
            raise UnknownReferenceError("gateway_id", "gateway", gateway_id)
        model_id = fields.get("model_id", before.model_id if before else None)
        model = conn.execute(sa.select(device_models.c.kind).where(device_models.c.id == model_id)).first()
        if model is None:
            raise UnknownReferenceError("model_id", "device model", str(model_id))
        model_kind = SensorKind(model.kind)
        if fields.get("kind") is None and (before is None or "model_id" in fields):
            fields["kind"] = model_kind
        kind = fields.get("kind", before.kind if before else None)
        if kind != model_kind:
            raise InvalidFieldError("kind", f"{kind} does not match the kind of model {model_id!r} ({model_kind})")
        return fields

    def _create_device(self, conn: sa.Connection, data: DeviceCreate, actor: str) -> DeviceRecord:
        if self._exists(conn, devices, data.id):
            raise AlreadyExistsError("device", data.id)
        return self._insert(conn, _DEVICES, self._device_refs(conn, dict(data), None), actor)

    async def create_device(self, data: DeviceCreate, *, actor: str) -> DeviceRecord:
        return await self._change("create_device", actor, lambda c: self._create_device(c, data, actor))

    async def get_device(self, device_id: str) -> DeviceRecord:
        return await self._call("get_device", self._run, lambda c: self._fetch(c, _DEVICES, device_id))

    async def update_device(self, device_id: str, changes: DeviceUpdate, *, version: int, actor: str) -> DeviceRecord:
        fields = changes.changes()
        return await self._change(
            "update_device",
            actor,
            lambda c: self._update(
                c,
                _DEVICES,
                device_id,
                fields=fields,
                version=version,
                actor=actor,
                check=lambda before, f: self._device_refs(c, f, before),
            ),
        )

    async def delete_device(self, device_id: str, *, version: int | None = None, actor: str) -> None:
        await self._change(
            "delete_device", actor, lambda c: self._delete(c, _DEVICES, device_id, version=version, actor=actor)
        )

    def _device_filters(
        self, gateway_id: str | None, kind: SensorKind | None, district: str | None, public_only: bool
    ) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if gateway_id is not None:
            where.append(devices.c.gateway_id == gateway_id)
        if kind is not None:
            where.append(devices.c.kind == kind.value)
        if district is not None:
            where.append(devices.c.district == district)
        if public_only:
            where.append(devices.c.visibility == Visibility.PUBLIC.value)
        return where

    async def list_devices(
        self,
        *,
        gateway_id: str | None = None,
        kind: SensorKind | None = None,
        district: str | None = None,
        public_only: bool = False,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[DeviceRecord]:
        _check_limit(limit)
        where = self._device_filters(gateway_id, kind, district, public_only)
        return await self._call("list_devices", self._run, lambda c: self._page(c, _DEVICES, where, after, limit))

    # --- spatial ------------------------------------------------------------------------------

    async def devices_within(
        self, lon: float, lat: float, radius_m: float, *, public_only: bool = False
    ) -> list[NearbyDevice]:
        check_point(lon, lat)
        check_radius(radius_m)
        where = self._device_filters(None, None, None, public_only)

        def query(conn: sa.Connection) -> list[NearbyDevice]:
            found = self._spatial.within(conn, where, lon, lat, radius_m)
            nearby = [NearbyDevice(device_record(row), distance) for row, distance in found]
            return sorted(nearby, key=lambda n: (n.distance_m, n.device.id))

        return await self._call("devices_within", self._run, query)

    async def devices_in_bbox(
        self, west: float, south: float, east: float, north: float, *, public_only: bool = False
    ) -> list[DeviceRecord]:
        box = check_box(west, south, east, north)
        where = self._device_filters(None, None, None, public_only)
        return await self._call(
            "devices_in_bbox",
            self._run,
            lambda c: [device_record(row) for row in self._spatial.in_box(c, where, box)],
        )

    async def devices_along(
        self, layer: str, feature_id: str, distance_m: float, *, public_only: bool = False
    ) -> list[NearbyDevice]:
        where = self._device_filters(None, None, None, public_only)

        def query(conn: sa.Connection) -> list[NearbyDevice]:
            found = layers_spatial.devices_along(
                conn, self.dialect, where, layer=layer, feature_id=feature_id, distance_m=distance_m
            )
            nearby = [NearbyDevice(device_record(row), distance) for row, distance in found]
            return sorted(nearby, key=lambda n: (n.distance_m, n.device.id))

        return await self._call("devices_along", self._run, query)

    # --- audit --------------------------------------------------------------------------------

    async def audit(self, entity: Entity, entity_id: str, *, limit: int = DEFAULT_LIMIT) -> list[AuditEntry]:
        _check_limit(limit)
        return await self._call("audit", self._run, lambda c: audit.changes_of(c, entity, entity_id, limit))
