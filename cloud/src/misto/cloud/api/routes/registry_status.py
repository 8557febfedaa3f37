"""Device and gateway status derived from telemetry (docs/registry.md#device-status).

* ``GET /api/v1/registry/status?gateway=&district=&state=``: every registered device and gateway
  with its state (online, stale, offline, never_seen), last seen, battery and signal (staff:
  operators, admins, technicians);
* ``GET /api/v1/registry/devices/{device}/status`` and ``/gateways/{gateway}/status``: one record;
* ``GET /api/v1/open-data/device-status``: public devices only, ``online`` or ``offline``, for the
  public map (anyone).

Each answer reads the registry and the store once (the latest readings of all devices and the
status of all gateways), never once per device. The time is taken from :func:`status_clock`, a
dependency tests override.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict

from misto.cloud.api.access import PUBLIC, allow
from misto.cloud.api.deps import StateDep, StoreDep
from misto.cloud.api.routes.registry_bulk import RegistryDep
from misto.cloud.auth.roles import Role
from misto.cloud.errors import StoreError
from misto.cloud.registry import NotFoundError, RegistryRepository, RegistryUnavailableError
from misto.cloud.registry.bulk_apply import all_devices, all_gateways
from misto.cloud.registry.errors import RegistryClosedError
from misto.cloud.registry.models import DeviceRecord, GatewayRecord, Visibility
from misto.cloud.registry.status import (
    DeviceStatus,
    GatewayLiveness,
    Liveness,
    Measured,
    Thresholds,
    device_statuses,
    gateway_statuses,
    public_state,
)
from misto.cloud.storage.base import DeviceInfo, GatewayStatus, Store

RETRY_AFTER_S = 5
STAFF = allow(Role.OPERATOR, Role.ADMIN, Role.TECHNICIAN)

router = APIRouter(tags=["registry status"])


def status_clock() -> datetime:
    """Now (UTC); tests override this dependency to drive the clock."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(status_clock)]


def thresholds_of(state: StateDep) -> Thresholds:
    config = state.settings.registry.status
    return Thresholds(timedelta(seconds=config.online_within_s), timedelta(seconds=config.stale_within_s))


ThresholdsDep = Annotated[Thresholds, Depends(thresholds_of)]


class MeasuredOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: float
    at: datetime

    @classmethod
    def of(cls, measured: Measured | None) -> MeasuredOut | None:
        return None if measured is None else cls(value=measured.value, at=measured.at)


class DeviceStatusOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    device: str
    gateway_id: str
    district: str | None
    visibility: Visibility
    state: Liveness
    last_seen: datetime | None
    battery: MeasuredOut | None  # batteryLevel, 0..1
    signal: MeasuredOut | None  # rssi, dBm
    polling: str | None  # the gateway's view of the device: available, unavailable, starting

    @classmethod
    def of(cls, s: DeviceStatus) -> DeviceStatusOut:
        return cls(
            device=s.device,
            gateway_id=s.gateway_id,
            district=s.district,
            visibility=s.visibility,
            state=s.state,
            last_seen=s.last_seen,
            battery=MeasuredOut.of(s.battery),
            signal=MeasuredOut.of(s.signal),
            polling=s.polling,
        )


class GatewayStatusOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    gateway: str
    district: str | None
    visibility: Visibility
    state: Liveness
    last_seen: datetime | None
    reported: str | None  # its last status message: online or offline
    agent_version: str | None

    @classmethod
    def of(cls, s: GatewayLiveness) -> GatewayStatusOut:
        return cls(
            gateway=s.gateway,
            district=s.district,
            visibility=s.visibility,
            state=s.state,
            last_seen=s.last_seen,
            reported=s.reported.value if s.reported else None,
            agent_version=s.agent_version,
        )


class StatusOverview(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    online_within_s: float
    stale_within_s: float
    counts: dict[Liveness, int]  # devices per state
    devices: list[DeviceStatusOut]
    gateways: list[GatewayStatusOut]


class PublicDeviceStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    device: str
    state: Literal["online", "offline"]
    last_seen: datetime | None


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)})


async def _telemetry(store: Store, *, devices: bool = True) -> tuple[list[DeviceInfo], list[GatewayStatus]]:
    """The latest readings of every device and the status of every gateway: one read of each."""
    try:
        return (await store.devices() if devices else []), await store.gateways()
    except StoreError as exc:
        raise _unavailable(exc) from None


async def _read(registry: RegistryRepository, fn: Any, *args: Any) -> Any:
    try:
        return await fn(registry, *args)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except (RegistryUnavailableError, RegistryClosedError) as exc:
        raise _unavailable(exc) from None


STAFF_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No credentials"},
    403: {"description": "Not an operator, admin or technician"},
    503: {"description": "The registry or the store is unavailable: try again"},
}


@router.get(
    "/api/v1/registry/status",
    response_model=StatusOverview,
    summary="Status of every registered device and gateway, from telemetry",
    dependencies=[STAFF],
    responses=STAFF_RESPONSES,
)
async def status_overview(  # noqa: PLR0917 - FastAPI passes query parameters by keyword
    registry: RegistryDep,
    store: StoreDep,
    now: Now,
    thresholds: ThresholdsDep,
    gateway: Annotated[str | None, Query(max_length=64, description="Only this gateway and its devices")] = None,
    district: Annotated[str | None, Query(max_length=200, description="Only devices and gateways here")] = None,
    state: Annotated[Liveness | None, Query(description="Only devices and gateways in this state")] = None,
) -> StatusOverview:
    devices = await _read(registry, _devices, gateway, district)
    gateways = [
        g for g in await _read(registry, all_gateways) if gateway in {None, g.id} and district in {None, g.district}
    ]
    telemetry, heard = await _telemetry(store)
    device_out = [
        s
        for s in device_statuses(devices, telemetry, heard, now=now, thresholds=thresholds)
        if state in {None, s.state}
    ]
    gateway_out = [
        s for s in gateway_statuses(gateways, heard, now=now, thresholds=thresholds) if state in {None, s.state}
    ]
    counts = dict.fromkeys(Liveness, 0)
    for s in device_out:
        counts[s.state] += 1
    return StatusOverview(
        at=now,
        online_within_s=thresholds.online_within.total_seconds(),
        stale_within_s=thresholds.stale_within.total_seconds(),
        counts=counts,
        devices=[DeviceStatusOut.of(s) for s in device_out],
        gateways=[GatewayStatusOut.of(s) for s in gateway_out],
    )


async def _devices(registry: RegistryRepository, gateway: str | None, district: str | None) -> list[DeviceRecord]:
    return [
        d for d in await all_devices(registry) if gateway in {None, d.gateway_id} and district in {None, d.district}
    ]


async def _device(registry: RegistryRepository, device_id: str) -> DeviceRecord:
    return await registry.get_device(device_id)


async def _gateway(registry: RegistryRepository, gateway_id: str) -> GatewayRecord:
    return await registry.get_gateway(gateway_id)


@router.get(
    "/api/v1/registry/devices/{device_id}/status",
    response_model=DeviceStatusOut,
    summary="One device's status from telemetry",
    dependencies=[STAFF],
    responses={**STAFF_RESPONSES, 404: {"description": "No such device"}},
)
async def device_status(
    device_id: Annotated[str, Path(max_length=64)],
    registry: RegistryDep,
    store: StoreDep,
    now: Now,
    thresholds: ThresholdsDep,
) -> DeviceStatusOut:
    record = await _read(registry, _device, device_id)
    [result] = device_statuses([record], *await _telemetry(store), now=now, thresholds=thresholds)
    return DeviceStatusOut.of(result)


@router.get(
    "/api/v1/registry/gateways/{gateway_id}/status",
    response_model=GatewayStatusOut,
    summary="One gateway's status from what the cloud last heard from it",
    dependencies=[STAFF],
    responses={**STAFF_RESPONSES, 404: {"description": "No such gateway"}},
)
async def gateway_status(
    gateway_id: Annotated[str, Path(max_length=64)],
    registry: RegistryDep,
    store: StoreDep,
    now: Now,
    thresholds: ThresholdsDep,
) -> GatewayStatusOut:
    record = await _read(registry, _gateway, gateway_id)
    _, heard = await _telemetry(store, devices=False)
    [result] = gateway_statuses([record], heard, now=now, thresholds=thresholds)
    return GatewayStatusOut.of(result)


@router.get(
    "/api/v1/open-data/device-status",
    response_model=list[PublicDeviceStatus],
    summary="Open data: public devices, online (fresh readings) or offline, for the map",
    dependencies=[PUBLIC],
    responses={503: STAFF_RESPONSES[503]},
)
async def public_device_status(
    registry: RegistryDep, store: StoreDep, now: Now, thresholds: ThresholdsDep
) -> list[PublicDeviceStatus]:
    devices = await _read(registry, _public_devices)
    return [
        PublicDeviceStatus(device=s.device, state=public_state(s.state), last_seen=s.last_seen)
        for s in device_statuses(devices, *await _telemetry(store), now=now, thresholds=thresholds)
    ]


async def _public_devices(registry: RegistryRepository) -> list[DeviceRecord]:
    return await all_devices(registry, public_only=True)
