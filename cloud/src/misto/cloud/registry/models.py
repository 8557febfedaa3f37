"""What the registry holds: pydantic models for what callers send (``*Create``, ``*Update``) and
show the public (``*Public``), and frozen records for what the repository returns.

Validation errors name the field (pydantic's ``loc``). Validators never change their input.
An update model carries only the fields to change (``model_fields_set``); ``null`` clears a field
that may be empty and is refused for one that may not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from misto.protocol.messages import DeviceId
from misto.protocol.topics import check_gateway_id
from misto.protocol.vocabulary import METRICS, SensorKind

#: The protocol's device id pattern (taken from its msgspec annotation, so there is one definition).
DEVICE_ID_PATTERN: str = get_args(DeviceId)[1].pattern
MODEL_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
PROFILE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"

T = TypeVar("T")


class Entity(StrEnum):
    DEVICE_MODEL = "device_model"
    GATEWAY = "gateway"
    DEVICE = "device"
    BROKER_ACCOUNT = "broker_account"
    PROVISIONING_TOKEN = "provisioning_token"  # noqa: S105 - an entity name, not a secret
    LAYER = "layer"  # a geospatial layer's imports (misto.cloud.registry.layers)
    USER = "user"  # people (misto.cloud.auth)
    API_KEY = "api_key"  # machines' API keys (misto.cloud.auth)


class Visibility(StrEnum):
    """Public records appear on the citizen map and in open data; private ones only to staff."""

    PUBLIC = "public"
    PRIVATE = "private"


class Lifecycle(StrEnum):
    """Where an asset is in its life (set by people; online/offline is derived from telemetry)."""

    PLANNED = "planned"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


def _gateway_id(value: str) -> str:
    return check_gateway_id(value)


def _metric_names(value: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [name for name in value if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(METRICS))}")
    if len(set(value)) != len(value):
        raise ValueError("metrics must not repeat")
    return value


GatewayIdField = Annotated[str, AfterValidator(_gateway_id)]
DeviceIdField = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
ModelIdField = Annotated[str, Field(pattern=MODEL_ID_PATTERN)]
ProfileField = Annotated[str, Field(pattern=PROFILE_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(max_length=4000)]
Metrics = Annotated[tuple[str, ...], AfterValidator(_metric_names)]


class Point(BaseModel):
    """A WGS 84 position in degrees (GeoJSON order: longitude first)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Public(_Input):
    """What anyone may see of a record: its declared fields, copied from the record, except that
    the exact location of a record that is not public is left out (its district stays)."""

    @classmethod
    def of(cls, record: object) -> Self:
        values = {name: getattr(record, name) for name in cls.model_fields}
        if "location" in values and getattr(record, "visibility", None) is not Visibility.PUBLIC:
            values["location"] = None
        return cls(**values)


class _Update(_Input):
    """Fields left out stay as they are; ``NOT_NULL`` fields may be changed but not cleared."""

    NOT_NULL: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.NOT_NULL:
            raise ValueError("may be changed but not cleared (null)")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields this update sets, with their new values (enums and points as stored)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


# --- device models ---------------------------------------------------------------------------


class DeviceModelCreate(_Input):
    id: ModelIdField
    kind: SensorKind
    manufacturer: Text
    name: Text
    profile: ProfileField | None = None  # register-map profile name (edge built-in or inline)
    metrics: Metrics = ()


class DeviceModelUpdate(_Update):
    NOT_NULL = frozenset({"kind", "manufacturer", "name", "metrics"})

    kind: SensorKind | None = None
    manufacturer: Text | None = None
    name: Text | None = None
    profile: ProfileField | None = None
    metrics: Metrics | None = None


@dataclass(frozen=True, slots=True)
class DeviceModelRecord:
    id: str
    kind: SensorKind
    manufacturer: str
    name: str
    profile: str | None
    metrics: tuple[str, ...]
    version: int
    created_at: datetime
    updated_at: datetime


class DeviceModelPublic(_Public):
    """The catalogue is public as a whole."""

    id: str
    kind: SensorKind
    manufacturer: str
    name: str
    profile: str | None
    metrics: tuple[str, ...]


# --- gateways --------------------------------------------------------------------------------


class GatewayCreate(_Input):
    id: GatewayIdField
    name: Text
    location: Point | None = None
    district: Text | None = None
    organisation: Text
    owner_contact: Text | None = None
    visibility: Visibility = Visibility.PRIVATE
    status: Lifecycle = Lifecycle.ACTIVE
    notes: LongText | None = None


class GatewayUpdate(_Update):
    NOT_NULL = frozenset({"name", "organisation", "visibility", "status"})

    name: Text | None = None
    location: Point | None = None
    district: Text | None = None
    organisation: Text | None = None
    owner_contact: Text | None = None
    visibility: Visibility | None = None
    status: Lifecycle | None = None
    notes: LongText | None = None


@dataclass(frozen=True, slots=True)
class GatewayRecord:
    id: str
    name: str
    location: Point | None
    district: str | None
    organisation: str
    owner_contact: str | None
    visibility: Visibility
    status: Lifecycle
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class GatewayPublic(_Public):
    """No owner contact, no notes; the location only of a public gateway."""

    id: str
    name: str
    location: Point | None
    district: str | None
    organisation: str
    visibility: Visibility
    status: Lifecycle


# --- devices ---------------------------------------------------------------------------------


class DeviceCreate(_Input):
    id: DeviceIdField
    gateway_id: GatewayIdField
    model_id: ModelIdField
    kind: SensorKind | None = None  # None: the model's kind
    install_date: date | None = None
    location: Point | None = None
    district: Text | None = None
    organisation: Text  # owner or partner organisation
    owner_contact: Text | None = None
    visibility: Visibility = Visibility.PRIVATE
    status: Lifecycle = Lifecycle.ACTIVE
    notes: LongText | None = None


class DeviceUpdate(_Update):
    NOT_NULL = frozenset({"gateway_id", "model_id", "kind", "organisation", "visibility", "status"})

    gateway_id: GatewayIdField | None = None
    model_id: ModelIdField | None = None
    kind: SensorKind | None = None
    install_date: date | None = None
    location: Point | None = None
    district: Text | None = None
    organisation: Text | None = None
    owner_contact: Text | None = None
    visibility: Visibility | None = None
    status: Lifecycle | None = None
    notes: LongText | None = None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: str
    gateway_id: str
    model_id: str
    kind: SensorKind
    install_date: date | None
    location: Point | None
    district: str | None
    organisation: str
    owner_contact: str | None
    visibility: Visibility
    status: Lifecycle
    notes: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class DevicePublic(_Public):
    """No owner contact, no notes; the exact location only of a public device (a private one keeps
    its district)."""

    id: str
    gateway_id: str
    model_id: str
    kind: SensorKind
    install_date: date | None
    location: Point | None
    district: str | None
    organisation: str
    visibility: Visibility
    status: Lifecycle


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing ordered by id; pass ``next_after`` as ``after`` for the next page
    (None: this was the last)."""

    items: tuple[T, ...]
    next_after: str | None


@dataclass(frozen=True, slots=True)
class NearbyDevice:
    device: DeviceRecord
    distance_m: float  # geodesic distance on the WGS 84 ellipsoid


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change: ``before`` is None for a create, ``after`` None for a delete."""

    seq: int
    at: datetime
    actor: str
    entity: Entity
    entity_id: str
    action: AuditAction
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def check_actor(actor: str) -> str:
    if not actor or len(actor) > 200 or not re.fullmatch(r"[^\x00-\x1f]+", actor):
        raise ValueError(f"actor: {actor!r} must be 1-200 printable characters")
    return actor
