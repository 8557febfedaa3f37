"""``/api/v1/layers`` and ``/api/v1/geo/*``: the city's geospatial layers as GeoJSON for maps, their
import, and spatial queries (docs/geospatial.md).

Public layers (districts, streets, parcels, monuments, ...) are public; the engineering networks
(``restricted`` in the catalogue: critical infrastructure) need a staff role (admin, operator,
technician): 401 without credentials, 403 for other roles. Devices found by a query are the
public devices, in their public view, unless the caller is staff. Imports are for operators and
admins. Bad parameters are 422 naming the parameter; a refused import is 422 listing every problem
with its path (``features[3].geometry.coordinates[0]``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter

from misto.cloud.api.access import PUBLIC, allow
from misto.cloud.api.deps import StateDep
from misto.cloud.auth.roles import Principal, Role
from misto.cloud.geo.errors import GeoJSONError
from misto.cloud.geo.layers import CATALOGUE, Layer, Visibility
from misto.cloud.registry.errors import (
    InvalidFieldError,
    NotFoundError,
    RegistryClosedError,
    RegistryUnavailableError,
)
from misto.cloud.registry.layers import DEFAULT_LIMIT, MAX_LIMIT, ImportMode, SqlLayers, StoredFeature
from misto.cloud.registry.models import DevicePublic, DeviceRecord, NearbyDevice
from misto.cloud.registry.sql import SqlRegistry

GEOJSON = "application/geo+json"
#: the largest GeoJSON body an import accepts (a city's parcel layer is a few MB)
MAX_IMPORT_BYTES = 64 * 1024 * 1024
#: who sees the restricted layers (engineering networks) and every device
STAFF = frozenset({Role.ADMIN, Role.OPERATOR, Role.TECHNICIAN})
DEVICES = "devices"  # the registry's devices, as a target of /geo/within and /geo/bbox
RETRY_AFTER_S = 5

router = APIRouter(tags=["layers"])
Viewer = Annotated[Principal | None, PUBLIC]
Importer = Annotated[Principal, allow(Role.OPERATOR, Role.ADMIN)]
Where = Literal["path", "query", "body"]
_RECORD = TypeAdapter(DeviceRecord)
_PUBLIC = TypeAdapter(DevicePublic)


def get_registry(state: StateDep) -> SqlRegistry:
    if not isinstance(state.registry, SqlRegistry):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the registry is not open")
    return state.registry


RegistryDep = Annotated[SqlRegistry, Depends(get_registry)]


def get_layers(registry: RegistryDep) -> SqlLayers:
    return SqlLayers(registry)


LayersDep = Annotated[SqlLayers, Depends(get_layers)]
Lon = Annotated[float, Query(ge=-180, le=180, description="Longitude, WGS 84 degrees")]
Lat = Annotated[float, Query(ge=-90, le=90, description="Latitude, WGS 84 degrees")]
Distance = Annotated[float, Query(ge=0, le=1_000_000, description="Metres (geodesic, WGS 84)")]
LayerName = Annotated[str, Query(max_length=64, description="A layer of the catalogue")]
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"  # no control characters (PostgreSQL refuses NUL in text)

READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON: {}}, "description": "A GeoJSON FeatureCollection"},
    401: {"description": "A restricted layer without credentials"},
    403: {"description": "A restricted layer, and a role that may not see it"},
    404: {"description": "No such layer or feature"},
}


def _invalid(where: Where, field: str, message: str, value: object = None) -> NoReturn:
    raise RequestValidationError([{"type": "value_error", "loc": (where, field), "msg": message, "input": value}])


@contextmanager
def _errors(where: Where = "query") -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except InvalidFieldError as exc:
        _invalid(where, exc.field, exc.message)
    except (RegistryUnavailableError, RegistryClosedError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from None


def _staff(viewer: Principal | None) -> bool:
    return viewer is not None and viewer.role in STAFF


def _layer(name: str, viewer: Principal | None, *, where: Where = "query", field: str = "layer") -> Layer:
    """The layer named, if the caller may see it: 401/403 for a restricted layer otherwise."""
    try:
        layer = Layer(name)
    except ValueError:
        if where == "path":
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown layer {name!r}") from None
        _invalid(where, field, f"unknown layer {name!r}; known layers: {', '.join(CATALOGUE)}", name)
    if CATALOGUE[layer].visibility is Visibility.RESTRICTED and not _staff(viewer):
        if viewer is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"layer {layer.value!r} is restricted: credentials required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"{viewer.role.value} may not see layer {layer.value!r}")
    return layer


def geojson(doc: dict[str, Any]) -> Response:
    return Response(json.dumps(doc, separators=(",", ":"), ensure_ascii=False), media_type=GEOJSON)


def _collection(features: Sequence[dict[str, Any]], **members: Any) -> Response:
    return geojson({"type": "FeatureCollection", **members, "features": list(features)})


def _device(record: DeviceRecord, staff: bool, distance_m: float | None = None) -> dict[str, Any]:
    """A device as a GeoJSON Point feature: everything for staff, the public view otherwise."""
    properties = (
        _RECORD.dump_python(record, mode="json") if staff else _PUBLIC.dump_python(DevicePublic.of(record), mode="json")
    )
    location = properties.pop("location")
    properties.pop("id")
    if distance_m is not None:
        properties["distance_m"] = round(distance_m, 3)
    geometry = {"type": "Point", "coordinates": [location["lon"], location["lat"]]} if location else None
    return {"type": "Feature", "id": record.id, "geometry": geometry, "properties": {"layer": DEVICES, **properties}}


def _nearby_devices(found: Sequence[NearbyDevice], staff: bool) -> list[dict[str, Any]]:
    return [_device(n.device, staff, n.distance_m) for n in found]


def _feature(feature: StoredFeature, distance_m: float | None = None) -> dict[str, Any]:
    doc = feature.to_geojson(with_layer=True)
    if distance_m is not None:
        doc["properties"]["distance_m"] = round(distance_m, 3)
    return doc


# --- layers --------------------------------------------------------------------------------------


@router.get("/api/v1/layers", summary="The layer catalogue with feature counts (public layers unless staff)")
async def list_layers(layers: LayersDep, viewer: Viewer) -> dict[str, Any]:
    with _errors():
        found = await layers.list_layers(public_only=not _staff(viewer))
    return {"layers": [summary.to_json() for summary in found]}


@router.get(
    "/api/v1/layers/{layer}",
    summary="A layer as a GeoJSON FeatureCollection, by feature id, a page at a time",
    response_class=Response,
    responses=READ_RESPONSES,
)
async def get_layer(  # noqa: PLR0917 - FastAPI passes query parameters by keyword
    layers: LayersDep,
    viewer: Viewer,
    layer: Annotated[str, Path(max_length=64)],
    west: Lon | None = None,
    south: Lat | None = None,
    east: Lon | None = None,
    north: Lat | None = None,
    after: Annotated[
        str | None, Query(max_length=64, pattern=PRINTABLE, description="Continue after this feature id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    which = _layer(layer, viewer, where="path")
    edges = (west, south, east, north)
    if any(v is None for v in edges) and any(v is not None for v in edges):
        _invalid("query", "west", "give all of west, south, east and north, or none")
    bbox = (
        (west, south, east, north)
        if west is not None and south is not None and east is not None and north is not None
        else None
    )
    with _errors():
        page = await layers.get_layer(which, bbox=bbox, after=after, limit=limit)
    return geojson(page.to_geojson())


@router.put(
    "/api/v1/layers/{layer}",
    summary="Import a GeoJSON FeatureCollection into a layer (all or nothing; dry_run only checks)",
    responses={
        401: {"description": "No credentials"},
        403: {"description": "Not an operator or admin"},
        404: {"description": "No such layer"},
        413: {"description": f"Body over {MAX_IMPORT_BYTES} bytes"},
        422: {"description": "The document has problems: every one, with its path"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {GEOJSON: {"schema": {"type": "object"}}, "application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def import_layer(  # noqa: PLR0917 - FastAPI passes query parameters by keyword
    request: Request,
    layers: LayersDep,
    principal: Importer,
    layer: Annotated[str, Path(max_length=64)],
    dry_run: bool = False,
    mode: ImportMode = ImportMode.REPLACE,
    source_crs: Annotated[str | None, Query(max_length=100, description="e.g. EPSG:32636")] = None,
    source: Annotated[
        str | None, Query(min_length=1, max_length=500, pattern=PRINTABLE, description="Where the data came from")
    ] = None,
) -> dict[str, Any]:
    which = _layer(layer, principal, where="path")
    body = await _read_body(request)
    with _errors():
        try:
            result = await layers.import_geojson(
                body, which, actor=principal.subject, mode=mode, source_crs=source_crs, source=source, dry_run=dry_run
            )
        except GeoJSONError as exc:
            problems = [{"type": "geojson", "loc": ["body", p.path], "msg": p.message} for p in exc.problems]
            raise HTTPException(422, problems) from None
    return result.to_json()


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"body over {MAX_IMPORT_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise HTTPException(413, f"body over {MAX_IMPORT_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --- spatial queries -------------------------------------------------------------------------------


@router.get(
    "/api/v1/geo/contains",
    summary="The polygons of a layer (districts, land parcels) that contain a point, border included",
    response_class=Response,
    responses=READ_RESPONSES,
)
async def contains(layers: LayersDep, viewer: Viewer, lon: Lon, lat: Lat, layer: LayerName) -> Response:
    which = _layer(layer, viewer)
    with _errors():
        found = await layers.containing(which, lon, lat)
    return _collection([_feature(f) for f in found])


@router.get(
    "/api/v1/geo/within",
    summary="Features of a layer, or devices (layer=devices), within a radius of a point, nearest first",
    response_class=Response,
    responses=READ_RESPONSES,
)
async def within(  # noqa: PLR0917 - FastAPI passes query parameters by keyword
    layers: LayersDep, registry: RegistryDep, viewer: Viewer, lon: Lon, lat: Lat, radius_m: Distance, layer: LayerName
) -> Response:
    staff = _staff(viewer)
    if layer == DEVICES:
        with _errors():
            found = await registry.devices_within(lon, lat, radius_m, public_only=not staff)
        return _collection(_nearby_devices(found, staff))
    which = _layer(layer, viewer)
    with _errors():
        nearby = await layers.within(which, lon, lat, radius_m)
    return _collection([_feature(n.feature, n.distance_m) for n in nearby])


@router.get(
    "/api/v1/geo/along",
    summary="Devices within a distance of a line feature (a water main), nearest first",
    response_class=Response,
    responses=READ_RESPONSES,
)
async def along(
    registry: RegistryDep,
    viewer: Viewer,
    layer: LayerName,
    feature: Annotated[str, Query(min_length=1, max_length=64, pattern=PRINTABLE, description="The line's id")],
    distance_m: Distance,
) -> Response:
    which = _layer(layer, viewer)
    staff = _staff(viewer)
    with _errors():
        found = await registry.devices_along(which.value, feature, distance_m, public_only=not staff)
    return _collection(_nearby_devices(found, staff))


@router.get(
    "/api/v1/geo/bbox",
    summary="Everything in a bounding box: features of the layers asked for (default all visible) and devices",
    response_class=Response,
    responses=READ_RESPONSES,
)
async def bbox(  # noqa: PLR0917 - FastAPI passes query parameters by keyword
    layers: LayersDep,
    registry: RegistryDep,
    viewer: Viewer,
    west: Lon,
    south: Lat,
    east: Lon,
    north: Lat,
    layer_names: Annotated[
        str | None,
        Query(alias="layers", max_length=1000, description="Comma-separated layers, 'devices' for devices"),
    ] = None,
) -> Response:
    staff = _staff(viewer)
    if layer_names is None:
        chosen = [layer for layer, spec in CATALOGUE.items() if staff or spec.visibility is Visibility.PUBLIC]
        with_devices = True
    else:
        names = [name.strip() for name in layer_names.split(",") if name.strip()]
        with_devices = DEVICES in names
        chosen = [_layer(name, viewer, field="layers") for name in names if name != DEVICES]
    with _errors():
        found = await layers.in_bbox(west, south, east, north, layers=chosen) if chosen else []
        devices = (
            await registry.devices_in_bbox(west, south, east, north, public_only=not staff) if with_devices else []
        )
    return _collection([*(_feature(f) for f in found), *(_device(d, staff) for d in devices)])
