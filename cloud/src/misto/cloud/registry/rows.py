"""Records to table rows and back, and records to the JSON snapshots of the audit log."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from misto.cloud.registry.models import (
    DeviceModelRecord,
    DeviceRecord,
    GatewayRecord,
    Lifecycle,
    Point,
    Visibility,
)
from misto.protocol.vocabulary import SensorKind

Record = DeviceModelRecord | GatewayRecord | DeviceRecord


def utc(moment: datetime) -> datetime:
    """Stored times are UTC; SQLite gives them back naive, PostgreSQL in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Model fields to column values: a point becomes ``lon``/``lat``, enums their values."""
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "location":
            values["lon"], values["lat"] = (value.lon, value.lat) if value is not None else (None, None)
        elif isinstance(value, Enum):
            values[name] = value.value
        elif isinstance(value, tuple):
            values[name] = list(value)
        else:
            values[name] = value
    return values


def _point(row: sa.Row[Any]) -> Point | None:
    return Point(lon=row.lon, lat=row.lat) if row.lon is not None else None


def model_record(row: sa.Row[Any]) -> DeviceModelRecord:
    return DeviceModelRecord(
        id=row.id,
        kind=SensorKind(row.kind),
        manufacturer=row.manufacturer,
        name=row.name,
        profile=row.profile,
        metrics=tuple(row.metrics),
        version=row.version,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def gateway_record(row: sa.Row[Any]) -> GatewayRecord:
    return GatewayRecord(
        id=row.id,
        name=row.name,
        location=_point(row),
        district=row.district,
        organisation=row.organisation,
        owner_contact=row.owner_contact,
        visibility=Visibility(row.visibility),
        status=Lifecycle(row.status),
        notes=row.notes,
        version=row.version,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def device_record(row: sa.Row[Any]) -> DeviceRecord:
    return DeviceRecord(
        id=row.id,
        gateway_id=row.gateway_id,
        model_id=row.model_id,
        kind=SensorKind(row.kind),
        install_date=row.install_date,
        location=_point(row),
        district=row.district,
        organisation=row.organisation,
        owner_contact=row.owner_contact,
        visibility=Visibility(row.visibility),
        status=Lifecycle(row.status),
        notes=row.notes,
        version=row.version,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Point):
        return {"lon": value.lon, "lat": value.lat}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    return value


def snapshot(record: Record) -> dict[str, Any]:
    """The whole record as JSON-ready values (the audit log is for administrators: nothing hidden)."""
    return {field.name: _jsonable(getattr(record, field.name)) for field in dataclasses.fields(record)}
