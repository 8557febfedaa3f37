"""Bulk import and export of registry devices, gateways and device models as CSV or GeoJSON
(device models: CSV only), see docs/registry.md#bulk-import-and-export. For each ``{entity}`` of
``devices``, ``gateways``, ``device-models``:

* ``POST /api/v1/registry/{entity}/import?format=csv|geojson&mode=create|upsert&dry_run=true|false``
  (operators and admins; the body is the file): 200 with the report when every row is good (a dry
  run writes nothing), 422 listing every bad row (nothing written), 409 when the registry changed
  during the import (what was written is undone), 413 for a file over the size limit.
* ``GET /api/v1/registry/{entity}/export?format=csv|geojson``: every record, every field
  (operators and admins).
* ``GET /api/v1/open-data/{entity}.csv`` (and ``.geojson`` but for device models): public devices
  and gateways only, without the private fields (``owner_contact``, ``notes``, ``version``); the
  whole model catalogue without ``version``; for anyone.

This router must be included before :mod:`.registry`'s (``/devices/export`` is not a device id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict

from misto.cloud.api.access import PUBLIC, allow
from misto.cloud.api.deps import StateDep
from misto.cloud.auth.roles import Principal, Role
from misto.cloud.registry import RegistryRepository, RegistryUnavailableError
from misto.cloud.registry.bulk import MAX_BYTES, BulkFormat, RowError, UnsupportedFormatError
from misto.cloud.registry.bulk_apply import ImportMode, ImportReport, Outcome, export_records, import_records
from misto.cloud.registry.bulk_entities import ENTITIES, BulkEntity
from misto.cloud.registry.errors import RegistryClosedError

RETRY_AFTER_S = 5
MEDIA_TYPES = {BulkFormat.CSV: "text/csv; charset=utf-8", BulkFormat.GEOJSON: "application/geo+json"}
FORMAT_NAMES = {BulkFormat.CSV: "CSV", BulkFormat.GEOJSON: "GeoJSON"}
BODY_TYPES: dict[BulkFormat, tuple[str, dict[str, Any]]] = {
    BulkFormat.CSV: ("text/csv", {"schema": {"type": "string"}}),
    BulkFormat.GEOJSON: ("application/geo+json", {"schema": {"type": "object"}}),
}
STATUS_OF = {
    Outcome.VALIDATED: status.HTTP_200_OK,
    Outcome.IMPORTED: status.HTTP_200_OK,
    Outcome.REFUSED: status.HTTP_422_UNPROCESSABLE_CONTENT,
    Outcome.CONFLICT: status.HTTP_409_CONFLICT,
}

router = APIRouter(tags=["registry bulk"])


def bulk_registry(state: StateDep) -> RegistryRepository:
    if state.registry is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the registry is not open")
    return state.registry


RegistryDep = Annotated[RegistryRepository, Depends(bulk_registry)]
Staff = Annotated[Principal, allow(Role.OPERATOR, Role.ADMIN)]
Format = Annotated[BulkFormat, Query(alias="format", description="csv or geojson")]


class RowErrorOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    where: str  # "row 7" (the header is row 1), "features[3]", "header" or "file"
    record: str | None  # the id of the device, gateway or model the row names
    field: str | None
    message: str
    text: str  # the whole error on one line: "row 7 (device aq-12), lat: ..."

    @classmethod
    def of(cls, error: RowError) -> RowErrorOut:
        return cls(where=error.where, record=error.record, field=error.field, message=error.message, text=str(error))


class ImportReportOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity: str  # devices, gateways, device-models
    format: BulkFormat
    mode: ImportMode
    dry_run: bool
    outcome: Outcome
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: list[RowErrorOut]

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            entity=report.entity,
            format=report.format,
            mode=report.mode,
            dry_run=report.dry_run,
            outcome=report.outcome,
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            errors=[RowErrorOut.of(error) for error in report.errors],
        )


async def _body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes :data:`MAX_BYTES`."""
    declared = request.headers.get("content-length", "")
    too_big = HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"the file is over {MAX_BYTES} bytes: split it")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)})


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No credentials"},
    403: {"description": "Not an operator or admin"},
    409: {"model": ImportReportOut, "description": "The registry changed during the import: nothing kept"},
    413: {"description": "The file is over the size limit"},
    422: {"model": ImportReportOut, "description": "Bad rows, each listed: nothing written"},
    503: {"description": "The registry is unavailable: try again"},
}


def _add_routes(entity: BulkEntity) -> None:
    """The import, export and open-data routes of one entity."""
    noun = entity.table.noun
    plural = f"{noun}s"
    formats = " or ".join(str(fmt) for fmt in entity.table.formats)
    bodies = {BODY_TYPES[fmt][0]: BODY_TYPES[fmt][1] for fmt in entity.table.formats}

    async def import_route(  # noqa: PLR0917 - FastAPI passes query parameters by keyword
        request: Request,
        response: Response,
        registry: RegistryDep,
        principal: Staff,
        fmt: Format,
        mode: Annotated[ImportMode, Query(description="create: only new ids; upsert: also update existing")] = (
            ImportMode.CREATE
        ),
        dry_run: Annotated[bool, Query(description="Check every row against the registry; write nothing")] = False,
    ) -> ImportReportOut:
        data = await _body(request)
        try:
            report = await import_records(
                entity, registry, data, fmt=fmt, mode=mode, dry_run=dry_run, actor=principal.subject
            )
        except (RegistryUnavailableError, RegistryClosedError) as exc:
            raise _unavailable(exc) from None
        response.status_code = STATUS_OF[report.outcome]
        return ImportReportOut.of(report)

    router.add_api_route(
        f"/api/v1/registry/{entity.name}/import",
        import_route,
        methods=["POST"],
        name=f"import_{entity.name.replace('-', '_')}",
        response_model=ImportReportOut,
        summary=f"Import {plural} from {formats} (the body); dry_run checks every row and writes nothing",
        responses=RESPONSES,
        openapi_extra={"requestBody": {"required": True, "content": bodies}},
    )

    async def export_route(registry: RegistryDep, fmt: Format = BulkFormat.CSV) -> Response:
        return await _export(entity, registry, fmt, public=False)

    router.add_api_route(
        f"/api/v1/registry/{entity.name}/export",
        export_route,
        methods=["GET"],
        name=f"export_{entity.name.replace('-', '_')}",
        summary=f"Every {noun} with every field, as {formats} (CSV is spreadsheet-safe)",
        response_class=Response,
        responses={401: RESPONSES[401], 403: RESPONSES[403], 422: UNSUPPORTED, 503: RESPONSES[503]},
        dependencies=[allow(Role.OPERATOR, Role.ADMIN)],
    )

    scope = f"public {plural}" if entity.table.located else "the device model catalogue"
    for fmt in entity.table.formats:
        router.add_api_route(
            f"/api/v1/open-data/{entity.name}.{fmt.value}",
            _open_data(entity, fmt),
            methods=["GET"],
            name=f"open_data_{entity.name.replace('-', '_')}_{fmt.value}",
            summary=f"Open data: {scope} as {FORMAT_NAMES[fmt]}, without private fields",
            response_class=Response,
            dependencies=[PUBLIC],
        )


def _open_data(entity: BulkEntity, fmt: BulkFormat) -> Callable[[RegistryRepository], Awaitable[Response]]:
    async def open_data(registry: RegistryDep) -> Response:
        return await _export(entity, registry, fmt, public=True)

    return open_data


UNSUPPORTED: dict[str, Any] = {"description": "A format the entity has no use for (GeoJSON of device models)"}


async def _export(entity: BulkEntity, registry: RegistryRepository, fmt: BulkFormat, *, public: bool) -> Response:
    try:
        text = await export_records(entity, registry, fmt, public=public)
    except UnsupportedFormatError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except (RegistryUnavailableError, RegistryClosedError) as exc:
        raise _unavailable(exc) from None
    filename = f"{entity.name}.{fmt.value}"
    return Response(
        text, media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


for _entity in ENTITIES.values():
    _add_routes(_entity)
