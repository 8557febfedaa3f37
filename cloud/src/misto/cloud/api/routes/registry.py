"""``/api/v1/registry/{device-models,gateways,devices}``: the asset registry (docs/registry.md).

Anyone may read the public view (``*Public``) of public records (the device-model catalogue is
public as a whole); staff (admin, operator, technician) read every record in full. Operators and
admins create (201), update (``PATCH`` with the ``version`` they read: 409 when it is stale),
delete (409 while still referenced) and read each record's audit log; technicians may also
register and update gateways and devices (those they install: location, install date, status),
but not delete them nor change the device-model catalogue. A private
record is "not found" to the public. The audit log names who made each change
(``principal.subject``: ``user:olena``, ``key:3f9a1c0b2d4e``, or ``operator`` for the bootstrap
operator token).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from misto.cloud.api.access import PUBLIC, STAFF, allow
from misto.cloud.api.deps import StateDep
from misto.cloud.auth.roles import Principal, Role
from misto.cloud.registry import (
    AlreadyExistsError,
    InUseError,
    InvalidFieldError,
    NotFoundError,
    RegistryRepository,
    RegistryUnavailableError,
    StaleVersionError,
    UnknownReferenceError,
)
from misto.cloud.registry.errors import RegistryClosedError
from misto.cloud.registry.models import (
    AuditEntry,
    DeviceCreate,
    DeviceModelCreate,
    DeviceModelPublic,
    DeviceModelRecord,
    DeviceModelUpdate,
    DevicePublic,
    DeviceRecord,
    DeviceUpdate,
    Entity,
    GatewayCreate,
    GatewayPublic,
    GatewayRecord,
    GatewayUpdate,
    Page,
    Visibility,
)
from misto.cloud.registry.repository import DEFAULT_LIMIT, MAX_LIMIT
from misto.protocol.vocabulary import SensorKind

#: Who may change the catalogue and add or remove records, and read the audit log.
EDITORS = (Role.ADMIN, Role.OPERATOR)
#: Who may register and update gateways and devices (field staff too).
FIELD_EDITORS = (Role.ADMIN, Role.OPERATOR, Role.TECHNICIAN)
Editor = Annotated[Principal, allow(*EDITORS)]
FieldEditor = Annotated[Principal, allow(*FIELD_EDITORS)]
RETRY_AFTER_S = 5
PREFIX = "/api/v1/registry"

router = APIRouter(prefix=PREFIX, tags=["registry"])

T = TypeVar("T")
Location = Literal["body", "query"]


def get_registry(state: StateDep) -> RegistryRepository:
    if state.registry is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the registry is not open")
    return state.registry


RegistryDep = Annotated[RegistryRepository, Depends(get_registry)]


def sees_everything(viewer: Annotated[Principal | None, PUBLIC]) -> bool:
    """Staff read every record in full; anyone else (or no one) the public view of public ones."""
    return viewer is not None and viewer.role in STAFF


OperatorView = Annotated[bool, Depends(sees_everything)]
After = Annotated[str | None, Query(max_length=64, description="Continue after this id (next_after of a page)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
DeleteVersion = Annotated[int | None, Query(ge=1, description="The version read; 409 when it is stale")]

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No credentials"},
    403: {"description": "Credentials refused, or a role not admitted"},
}
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Credentials refused"},
    404: {"description": "No such record (or a private one, to the public)"},
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    409: {"description": "Already exists, stale version, or still referenced"},
    503: {"description": "The registry database is unavailable: try again"},
}


@contextmanager
def registry_errors(location: Location = "body") -> Iterator[None]:
    """Registry errors as HTTP answers: 404, 409, 422 naming the field (in FastAPI's format), 503."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except (AlreadyExistsError, StaleVersionError, InUseError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except UnknownReferenceError as exc:
        message = f"{exc.entity} {exc.entity_id!r} not found"
        raise _invalid(location, exc.field, message, exc.entity_id) from None
    except InvalidFieldError as exc:
        raise _invalid(location, exc.field, exc.message, None) from None
    except (RegistryUnavailableError, RegistryClosedError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from None


def _invalid(location: Location, field: str, message: str, value: object) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": (location, field), "msg": message, "input": value}])


class PageOut(BaseModel, Generic[T]):
    """One page ordered by id; pass ``next_after`` as ``after`` for the next (null: the last)."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_after: str | None


def _page(page: Page[Any], items: list[T]) -> PageOut[T]:
    return PageOut[T](items=items, next_after=page.next_after)


def _visible(record: GatewayRecord | DeviceRecord, operator: bool) -> None:
    """A private record does not exist for the public."""
    if not operator and record.visibility is not Visibility.PUBLIC:
        entity = "gateway" if isinstance(record, GatewayRecord) else "device"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{entity} {record.id!r} not found")


def _located(response: Response, path: str) -> None:
    response.headers["Location"] = f"{PREFIX}/{path}"


# --- device models ---------------------------------------------------------------------------

ModelId = Annotated[str, Path(max_length=64, description="Device model id", examples=["aq1"])]


class DeviceModelPatch(DeviceModelUpdate):
    version: int = Field(ge=1, description="The version read: 409 when the record changed meanwhile")


@router.get(
    "/device-models",
    response_model=PageOut[DeviceModelRecord] | PageOut[DeviceModelPublic],
    summary="The device-model catalogue (full records for staff)",
    responses={403: READ_RESPONSES[403]},
)
async def list_device_models(
    registry: RegistryDep,
    operator: OperatorView,
    kind: SensorKind | None = None,
    after: After = None,
    limit: Limit = DEFAULT_LIMIT,
) -> PageOut[DeviceModelRecord] | PageOut[DeviceModelPublic]:
    with registry_errors("query"):
        page = await registry.list_models(kind=kind, after=after, limit=limit)
    if operator:
        return _page(page, list(page.items))
    return _page(page, [DeviceModelPublic.of(record) for record in page.items])


@router.get(
    "/device-models/{model_id}",
    response_model=DeviceModelRecord | DeviceModelPublic,
    summary="One device model",
    responses=READ_RESPONSES,
)
async def get_device_model(
    model_id: ModelId, registry: RegistryDep, operator: OperatorView
) -> DeviceModelRecord | DeviceModelPublic:
    with registry_errors():
        record = await registry.get_model(model_id)
    return record if operator else DeviceModelPublic.of(record)


@router.post(
    "/device-models",
    response_model=DeviceModelRecord,
    status_code=status.HTTP_201_CREATED,
    summary="Add a device model",
    responses=WRITE_RESPONSES,
)
async def create_device_model(
    body: DeviceModelCreate, registry: RegistryDep, response: Response, principal: Editor
) -> DeviceModelRecord:
    with registry_errors():
        record = await registry.create_model(body, actor=principal.subject)
    _located(response, f"device-models/{record.id}")
    return record


@router.patch(
    "/device-models/{model_id}",
    response_model=DeviceModelRecord,
    summary="Change a device model (only the fields sent; `version` as read)",
    responses={**WRITE_RESPONSES, 404: READ_RESPONSES[404]},
)
async def update_device_model(
    model_id: ModelId, body: DeviceModelPatch, registry: RegistryDep, principal: Editor
) -> DeviceModelRecord:
    changes = DeviceModelUpdate.model_validate(_changes(body))
    with registry_errors():
        return await registry.update_model(model_id, changes, version=body.version, actor=principal.subject)


@router.delete(
    "/device-models/{model_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a device model (409 while devices use it)",
    responses={**WRITE_RESPONSES, 404: READ_RESPONSES[404]},
)
async def delete_device_model(
    model_id: ModelId, registry: RegistryDep, principal: Editor, version: DeleteVersion = None
) -> None:
    with registry_errors("query"):
        await registry.delete_model(model_id, version=version, actor=principal.subject)


@router.get(
    "/device-models/{model_id}/audit",
    response_model=list[AuditEntry],
    summary="The changes of a device model, newest first",
    dependencies=[allow(*EDITORS)],
    responses=AUTH_RESPONSES,
)
async def device_model_audit(
    model_id: ModelId, registry: RegistryDep, limit: Limit = DEFAULT_LIMIT
) -> list[AuditEntry]:
    with registry_errors("query"):
        return await registry.audit(Entity.DEVICE_MODEL, model_id, limit=limit)


# --- gateways --------------------------------------------------------------------------------

GatewayId = Annotated[str, Path(max_length=64, description="Gateway id", examples=["gw-kherson-001"])]


class GatewayPatch(GatewayUpdate):
    version: int = Field(ge=1, description="The version read: 409 when the record changed meanwhile")


@router.get(
    "/gateways",
    response_model=PageOut[GatewayRecord] | PageOut[GatewayPublic],
    summary="Gateways (public ones, public fields; everything for staff)",
    responses={403: READ_RESPONSES[403]},
)
async def list_gateways(
    registry: RegistryDep,
    operator: OperatorView,
    district: Annotated[str | None, Query(max_length=200)] = None,
    after: After = None,
    limit: Limit = DEFAULT_LIMIT,
) -> PageOut[GatewayRecord] | PageOut[GatewayPublic]:
    with registry_errors("query"):
        page = await registry.list_gateways(district=district, public_only=not operator, after=after, limit=limit)
    if operator:
        return _page(page, list(page.items))
    return _page(page, [GatewayPublic.of(record) for record in page.items])


@router.get(
    "/gateways/{gateway_id}",
    response_model=GatewayRecord | GatewayPublic,
    summary="One gateway",
    responses=READ_RESPONSES,
)
async def get_gateway(
    gateway_id: GatewayId, registry: RegistryDep, operator: OperatorView
) -> GatewayRecord | GatewayPublic:
    with registry_errors():
        record = await registry.get_gateway(gateway_id)
    _visible(record, operator)
    return record if operator else GatewayPublic.of(record)


@router.post(
    "/gateways",
    response_model=GatewayRecord,
    status_code=status.HTTP_201_CREATED,
    summary="Register a gateway",
    responses=WRITE_RESPONSES,
)
async def create_gateway(
    body: GatewayCreate, registry: RegistryDep, response: Response, principal: FieldEditor
) -> GatewayRecord:
    with registry_errors():
        record = await registry.create_gateway(body, actor=principal.subject)
    _located(response, f"gateways/{record.id}")
    return record


@router.patch(
    "/gateways/{gateway_id}",
    response_model=GatewayRecord,
    summary="Change a gateway (only the fields sent; `version` as read)",
    responses={**WRITE_RESPONSES, 404: READ_RESPONSES[404]},
)
async def update_gateway(
    gateway_id: GatewayId, body: GatewayPatch, registry: RegistryDep, principal: FieldEditor
) -> GatewayRecord:
    changes = GatewayUpdate.model_validate(_changes(body))
    with registry_errors():
        return await registry.update_gateway(gateway_id, changes, version=body.version, actor=principal.subject)


@router.delete(
    "/gateways/{gateway_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a gateway (409 while devices are attached to it)",
    responses={**WRITE_RESPONSES, 404: READ_RESPONSES[404]},
)
async def delete_gateway(
    gateway_id: GatewayId, registry: RegistryDep, principal: Editor, version: DeleteVersion = None
) -> None:
    with registry_errors("query"):
        await registry.delete_gateway(gateway_id, version=version, actor=principal.subject)


@router.get(
    "/gateways/{gateway_id}/audit",
    response_model=list[AuditEntry],
    summary="The changes of a gateway, newest first",
    dependencies=[allow(*EDITORS)],
    responses=AUTH_RESPONSES,
)
async def gateway_audit(gateway_id: GatewayId, registry: RegistryDep, limit: Limit = DEFAULT_LIMIT) -> list[AuditEntry]:
    with registry_errors("query"):
        return await registry.audit(Entity.GATEWAY, gateway_id, limit=limit)


# --- devices ---------------------------------------------------------------------------------

DeviceId = Annotated[str, Path(max_length=64, description="Device id", examples=["aq-1"])]


class DevicePatch(DeviceUpdate):
    version: int = Field(ge=1, description="The version read: 409 when the record changed meanwhile")


@router.get(
    "/devices",
    response_model=PageOut[DeviceRecord] | PageOut[DevicePublic],
    summary="Devices (public ones, public fields; everything for staff)",
    responses={403: READ_RESPONSES[403]},
)
async def list_devices(  # noqa: PLR0917 - FastAPI passes query parameters by keyword
    registry: RegistryDep,
    operator: OperatorView,
    gateway: Annotated[str | None, Query(max_length=64, description="Only this gateway's devices")] = None,
    kind: SensorKind | None = None,
    district: Annotated[str | None, Query(max_length=200)] = None,
    after: After = None,
    limit: Limit = DEFAULT_LIMIT,
) -> PageOut[DeviceRecord] | PageOut[DevicePublic]:
    with registry_errors("query"):
        page = await registry.list_devices(
            gateway_id=gateway, kind=kind, district=district, public_only=not operator, after=after, limit=limit
        )
    if operator:
        return _page(page, list(page.items))
    return _page(page, [DevicePublic.of(record) for record in page.items])


@router.get(
    "/devices/{device_id}",
    response_model=DeviceRecord | DevicePublic,
    summary="One device",
    responses=READ_RESPONSES,
)
async def get_device(device_id: DeviceId, registry: RegistryDep, operator: OperatorView) -> DeviceRecord | DevicePublic:
    with registry_errors():
        record = await registry.get_device(device_id)
    _visible(record, operator)
    return record if operator else DevicePublic.of(record)


@router.post(
    "/devices",
    response_model=DeviceRecord,
    status_code=status.HTTP_201_CREATED,
    summary="Register a device (its gateway and model must exist)",
    responses=WRITE_RESPONSES,
)
async def create_device(
    body: DeviceCreate, registry: RegistryDep, response: Response, principal: FieldEditor
) -> DeviceRecord:
    with registry_errors():
        record = await registry.create_device(body, actor=principal.subject)
    _located(response, f"devices/{record.id}")
    return record


@router.patch(
    "/devices/{device_id}",
    response_model=DeviceRecord,
    summary="Change a device (only the fields sent; `version` as read)",
    responses={**WRITE_RESPONSES, 404: READ_RESPONSES[404]},
)
async def update_device(
    device_id: DeviceId, body: DevicePatch, registry: RegistryDep, principal: FieldEditor
) -> DeviceRecord:
    changes = DeviceUpdate.model_validate(_changes(body))
    with registry_errors():
        return await registry.update_device(device_id, changes, version=body.version, actor=principal.subject)


@router.delete(
    "/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a device",
    responses={**WRITE_RESPONSES, 404: READ_RESPONSES[404]},
)
async def delete_device(
    device_id: DeviceId, registry: RegistryDep, principal: Editor, version: DeleteVersion = None
) -> None:
    with registry_errors("query"):
        await registry.delete_device(device_id, version=version, actor=principal.subject)


@router.get(
    "/devices/{device_id}/audit",
    response_model=list[AuditEntry],
    summary="The changes of a device, newest first",
    dependencies=[allow(*EDITORS)],
    responses=AUTH_RESPONSES,
)
async def device_audit(device_id: DeviceId, registry: RegistryDep, limit: Limit = DEFAULT_LIMIT) -> list[AuditEntry]:
    with registry_errors("query"):
        return await registry.audit(Entity.DEVICE, device_id, limit=limit)


def _changes(body: DeviceModelPatch | GatewayPatch | DevicePatch) -> dict[str, Any]:
    """The fields of a PATCH body other than ``version``, as sent (so ``null`` still clears)."""
    return {name: getattr(body, name) for name in body.model_fields_set if name != "version"}
