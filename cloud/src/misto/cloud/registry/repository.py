"""The :class:`RegistryRepository` interface: one async contract, implemented once with SQLAlchemy
(:mod:`misto.cloud.registry.sql`) on SQLite and on PostgreSQL + PostGIS, and checked by one shared
suite (``cloud/tests/test_registry_repository.py``) on both.

Every change takes the ``actor`` who makes it and writes an audit entry in the same transaction.
Updates and deletes take the ``version`` the caller read: a stale one is refused with
:class:`~misto.cloud.registry.errors.StaleVersionError`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from misto.cloud.registry.models import (
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
)
from misto.protocol.vocabulary import SensorKind

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@runtime_checkable
class RegistryRepository(Protocol):
    # device models
    async def create_model(self, data: DeviceModelCreate, *, actor: str) -> DeviceModelRecord: ...
    async def get_model(self, model_id: str) -> DeviceModelRecord: ...
    async def update_model(
        self, model_id: str, changes: DeviceModelUpdate, *, version: int, actor: str
    ) -> DeviceModelRecord: ...
    async def delete_model(self, model_id: str, *, version: int | None = None, actor: str) -> None: ...
    async def list_models(
        self, *, kind: SensorKind | None = None, after: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[DeviceModelRecord]: ...

    # gateways
    async def create_gateway(self, data: GatewayCreate, *, actor: str) -> GatewayRecord: ...
    async def get_gateway(self, gateway_id: str) -> GatewayRecord: ...
    async def update_gateway(
        self, gateway_id: str, changes: GatewayUpdate, *, version: int, actor: str
    ) -> GatewayRecord: ...
    async def delete_gateway(self, gateway_id: str, *, version: int | None = None, actor: str) -> None: ...
    async def list_gateways(
        self,
        *,
        district: str | None = None,
        public_only: bool = False,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[GatewayRecord]: ...

    # devices
    async def create_device(self, data: DeviceCreate, *, actor: str) -> DeviceRecord: ...
    async def get_device(self, device_id: str) -> DeviceRecord: ...
    async def update_device(
        self, device_id: str, changes: DeviceUpdate, *, version: int, actor: str
    ) -> DeviceRecord: ...
    async def delete_device(self, device_id: str, *, version: int | None = None, actor: str) -> None: ...
    async def list_devices(
        self,
        *,
        gateway_id: str | None = None,
        kind: SensorKind | None = None,
        district: str | None = None,
        public_only: bool = False,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[DeviceRecord]: ...

    # spatial
    async def devices_within(
        self, lon: float, lat: float, radius_m: float, *, public_only: bool = False
    ) -> list[NearbyDevice]:
        """Devices whose location is within ``radius_m`` metres (geodesic, WGS 84) of the point,
        nearest first (ties by id)."""
        ...

    async def devices_in_bbox(
        self, west: float, south: float, east: float, north: float, *, public_only: bool = False
    ) -> list[DeviceRecord]:
        """Devices whose location lies in the box (edges included), ordered by id."""
        ...

    async def devices_along(
        self, layer: str, feature_id: str, distance_m: float, *, public_only: bool = False
    ) -> list[NearbyDevice]:
        """Devices within ``distance_m`` metres (geodesic) of a line feature of a layer (a water
        main: ``water_network``, ``water-1``), nearest first (ties by id)."""
        ...

    # audit
    async def audit(self, entity: Entity, entity_id: str, *, limit: int = DEFAULT_LIMIT) -> list[AuditEntry]:
        """Changes of one record, newest first."""
        ...

    async def ping(self) -> None: ...
    async def close(self) -> None: ...
