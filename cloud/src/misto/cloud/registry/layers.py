"""The geospatial layers in the registry database: import a validated GeoJSON FeatureCollection
into a layer (all or nothing, replacing the layer or updating features by id, audited), list the
layers, serve a layer as GeoJSON, and the spatial queries on features (which polygon contains a
point, what lies within a radius, what a bounding box holds).

One implementation over SQLAlchemy for SQLite and PostgreSQL + PostGIS; the spatial work is done
per dialect by :mod:`.layers_spatial` (PostGIS in SQL; SQLite prefilters in SQL and decides with
shapely). Validation is :mod:`misto.cloud.geo.geojson`'s: nothing is written while any feature has
a problem. Devices along a network line are the registry's :meth:`SqlRegistry.devices_along`.
See docs/geospatial.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from misto.cloud.geo.errors import GeoJSONError, Problem
from misto.cloud.geo.geojson import Feature, LayerData, check_feature_collection
from misto.cloud.geo.layers import CATALOGUE, Layer, LayerSpec, Visibility
from misto.cloud.registry import audit
from misto.cloud.registry.errors import InvalidFieldError
from misto.cloud.registry.layers_spatial import FeatureSpatial, check_distance, for_dialect
from misto.cloud.registry.models import AuditAction, Entity, check_actor
from misto.cloud.registry.rows import utc
from misto.cloud.registry.spatial import Box, check_box, check_point
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.tables import layer_features, layer_imports

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
AUDIT_ENTITY = Entity.LAYER  # entity of the audit entries of imports (entity_id: the layer)
_CHUNK = 500  # ids per IN (...) when upserting


class ImportMode(StrEnum):
    REPLACE = "replace"  # the layer becomes exactly the imported features
    UPSERT = "upsert"  # features are added or replaced by id; the others stay


@dataclass(frozen=True, slots=True)
class LayerSummary:
    """A layer of the catalogue with what the registry holds of it."""

    spec: LayerSpec
    feature_count: int
    imported_at: datetime | None
    source: str | None
    name: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.spec.layer.value,
            "title": self.spec.title,
            "description": self.spec.description,
            "geometry_types": sorted(self.spec.geometry_types),
            "visibility": self.spec.visibility.value,
            "feature_count": self.feature_count,
            "imported_at": self.imported_at.isoformat() if self.imported_at else None,
            "source": self.source,
            "name": self.name,
        }


@dataclass(frozen=True, slots=True)
class StoredFeature:
    layer: Layer
    id: str
    geometry: Mapping[str, Any]
    properties: Mapping[str, Any]

    def to_geojson(self, *, with_layer: bool = False) -> dict[str, Any]:
        properties = {"layer": self.layer.value, **self.properties} if with_layer else dict(self.properties)
        return {"type": "Feature", "id": self.id, "geometry": self.geometry, "properties": properties}


@dataclass(frozen=True, slots=True)
class NearbyFeature:
    feature: StoredFeature
    distance_m: float  # geodesic, WGS 84; 0 when the point is inside or on it


@dataclass(frozen=True, slots=True)
class FeaturePage:
    """Features of one layer ordered by id; ``next_after`` continues (None: the last page)."""

    layer: Layer
    features: tuple[StoredFeature, ...]
    next_after: str | None

    def to_geojson(self) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "layer": self.layer.value,
            "next_after": self.next_after,
            "features": [f.to_geojson() for f in self.features],
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did, or (``dry_run``) would do: ``problems`` empty means accepted."""

    layer: Layer
    mode: ImportMode
    dry_run: bool
    valid_features: int
    problems: tuple[Problem, ...]
    written: int = 0  # features inserted or replaced
    removed: int = 0  # features of the layer deleted because the import replaced the layer
    feature_count: int = 0  # features in the layer afterwards (before, for a dry run)
    source_crs: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer.value,
            "mode": self.mode.value,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "valid_features": self.valid_features,
            "problems": [{"path": p.path, "message": p.message} for p in self.problems],
            "written": self.written,
            "removed": self.removed,
            "feature_count": self.feature_count,
            "source_crs": self.source_crs,
        }


def layer_of(value: Layer | str, field: str = "layer") -> Layer:
    """``value`` as a :class:`Layer`; an unknown name is an :class:`InvalidFieldError` naming ``field``."""
    try:
        return Layer(value)
    except ValueError:
        raise InvalidFieldError(field, f"unknown layer {value!r}; known layers: {', '.join(CATALOGUE)}") from None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidFieldError("limit", f"{limit} must be between 1 and {MAX_LIMIT}")


def _stored(row: sa.Row[Any]) -> StoredFeature:
    return StoredFeature(Layer(row.layer), row.feature_id, json.loads(row.geometry), row.properties)


class SqlLayers:
    """The layers of one :class:`SqlRegistry` (same database, same worker thread, same audit log)."""

    def __init__(self, registry: SqlRegistry) -> None:
        self._registry = registry
        self._spatial: FeatureSpatial = for_dialect(registry.dialect)

    # --- import -------------------------------------------------------------------------------

    async def import_geojson(
        self,
        data: bytes | str | Mapping[str, Any],
        layer: Layer | str,
        *,
        actor: str,
        mode: ImportMode = ImportMode.REPLACE,
        source_crs: str | None = None,
        source: str | None = None,
        dry_run: bool = False,
    ) -> ImportResult:
        """Validate ``data`` as ``layer`` and, unless ``dry_run``, write it in one transaction.
        A dry run reports every problem and writes nothing; a real import with any problem raises
        :class:`GeoJSONError` (with every problem) and writes nothing."""
        which = layer_of(layer)
        report = await asyncio.to_thread(check_feature_collection, data, which, source_crs=source_crs)
        if dry_run:
            count = await self.count(which)
            valid = len(report.features)
            return ImportResult(
                which, mode, True, valid, report.problems, feature_count=count, source_crs=report.source_crs
            )
        if report.problems or report.source_crs is None:
            raise GeoJSONError(report.problems, layer=which.value, source=source)
        loaded = LayerData(which, report.features, report.name, report.description, report.source_crs)
        return await self.import_layer(loaded, actor=actor, mode=mode, source=source)

    async def import_layer(
        self, data: LayerData, *, actor: str, mode: ImportMode = ImportMode.REPLACE, source: str | None = None
    ) -> ImportResult:
        """Write an already validated layer (e.g. the sample base) in one transaction, audited."""
        if source is not None and not 1 <= len(source) <= 500:
            raise InvalidFieldError("source", "must be 1-500 characters")
        try:
            check_actor(actor)
        except ValueError as error:
            raise InvalidFieldError("actor", str(error)) from None
        rows = [self._row(feature) for feature in data.features]  # bounds computed outside the transaction
        return await self._registry.transaction(
            "import_layer",
            lambda conn: self._write(conn, data, rows=rows, mode=mode, source=source, actor=actor),
            actor=actor,
        )

    @staticmethod
    def _row(feature: Feature) -> dict[str, Any]:
        west, south, east, north = (float(v) for v in feature.shape.bounds)
        return {
            "layer": feature.layer.value,
            "feature_id": feature.id,
            "geometry_type": feature.geometry_type.value,
            "geometry": json.dumps(feature.geometry, separators=(",", ":")),
            "properties": feature.to_geojson()["properties"],
            "west": west,
            "south": south,
            "east": east,
            "north": north,
        }

    def _write(
        self,
        conn: sa.Connection,
        data: LayerData,
        *,
        rows: list[dict[str, Any]],
        mode: ImportMode,
        source: str | None,
        actor: str,
    ) -> ImportResult:
        now = self._registry.now()
        layer = data.layer.value
        c = layer_features.c
        before = self._count(conn, layer)
        if mode is ImportMode.REPLACE:
            conn.execute(layer_features.delete().where(c.layer == layer))
        else:
            ids = [row["feature_id"] for row in rows]
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                conn.execute(layer_features.delete().where(c.layer == layer, c.feature_id.in_(chunk)))
        if rows:
            conn.execute(layer_features.insert(), [{**row, "imported_at": now} for row in rows])
        after = self._count(conn, layer)
        removed = before if mode is ImportMode.REPLACE else 0
        previous = conn.execute(sa.select(layer_imports).where(layer_imports.c.layer == layer)).first()
        entry = {
            "layer": layer,
            "name": data.name,
            "description": data.description,
            "source": source,
            "source_crs": data.source_crs,
            "mode": mode.value,
            "feature_count": after,
            "imported_at": now,
            "imported_by": actor,
        }
        conn.execute(layer_imports.delete().where(layer_imports.c.layer == layer))
        conn.execute(layer_imports.insert().values(**entry))
        audit.record_change(
            conn,
            at=now,
            actor=actor,
            entity=AUDIT_ENTITY,
            entity_id=layer,
            action=AuditAction.CREATE if previous is None else AuditAction.UPDATE,
            before=_snapshot({str(k): v for k, v in previous._mapping.items()}) if previous is not None else None,
            after={**_snapshot(entry), "features_written": len(rows)},
        )
        return ImportResult(
            data.layer,
            mode,
            False,
            len(rows),
            (),
            written=len(rows),
            removed=removed,
            feature_count=after,
            source_crs=data.source_crs,
        )

    @staticmethod
    def _count(conn: sa.Connection, layer: str) -> int:
        query = sa.select(sa.func.count()).select_from(layer_features).where(layer_features.c.layer == layer)
        return int(conn.execute(query).scalar_one())

    # --- reading ------------------------------------------------------------------------------

    async def count(self, layer: Layer | str) -> int:
        which = layer_of(layer).value
        return await self._registry.transaction("count_features", lambda c: self._count(c, which))

    async def list_layers(self, *, public_only: bool = False) -> list[LayerSummary]:
        """Every layer of the catalogue (only public ones if ``public_only``), with its feature count."""

        def query(conn: sa.Connection) -> list[LayerSummary]:
            counts_query = sa.select(layer_features.c.layer, sa.func.count()).group_by(layer_features.c.layer)
            counts = {row[0]: int(row[1]) for row in conn.execute(counts_query)}
            imports = {row.layer: row for row in conn.execute(sa.select(layer_imports))}
            found = []
            for layer_spec in CATALOGUE.values():
                if public_only and layer_spec.visibility is not Visibility.PUBLIC:
                    continue
                last = imports.get(layer_spec.layer.value)
                found.append(
                    LayerSummary(
                        layer_spec,
                        counts.get(layer_spec.layer.value, 0),
                        utc(last.imported_at) if last is not None else None,
                        last.source if last is not None else None,
                        last.name if last is not None else None,
                    )
                )
            return found

        return await self._registry.transaction("list_layers", query)

    async def get_layer(
        self,
        layer: Layer | str,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> FeaturePage:
        """The layer's features ordered by id (only those meeting ``bbox`` if given), a page at a time."""
        which = layer_of(layer)
        _check_limit(limit)
        box = _area_box(*bbox) if bbox is not None else None
        where: list[sa.ColumnElement[bool]] = [layer_features.c.layer == which.value]
        if after is not None:
            where.append(layer_features.c.feature_id > after)

        def query(conn: sa.Connection) -> FeaturePage:
            if box is None:
                select = sa.select(layer_features).where(*where).order_by(layer_features.c.feature_id)
                rows = list(conn.execute(select.limit(limit + 1)).all())
            else:
                rows = self._spatial.in_box(conn, where, box)[: limit + 1]
            features = tuple(_stored(row) for row in rows[:limit])
            return FeaturePage(which, features, features[-1].id if len(rows) > limit else None)

        return await self._registry.transaction("get_layer", query)

    # --- spatial ------------------------------------------------------------------------------

    async def containing(self, layer: Layer | str, lon: float, lat: float) -> list[StoredFeature]:
        """The polygons of ``layer`` (districts, parcels) that contain the point, border included, by id."""
        which = layer_of(layer)
        check_point(lon, lat)

        def query(conn: sa.Connection) -> list[StoredFeature]:
            rows = self._spatial.containing(conn, which.value, lon, lat)
            return sorted((_stored(row) for row in rows), key=lambda f: f.id)

        return await self._registry.transaction("containing", query)

    async def within(self, layer: Layer | str, lon: float, lat: float, radius_m: float) -> list[NearbyFeature]:
        """Features of ``layer`` whose nearest part is within ``radius_m`` geodesic metres of the
        point, nearest first (ties by id)."""
        which = layer_of(layer)
        check_point(lon, lat)
        check_distance("radius_m", radius_m)

        def query(conn: sa.Connection) -> list[NearbyFeature]:
            found = self._spatial.within(conn, which.value, lon, lat, radius_m)
            nearby = [NearbyFeature(_stored(row), distance) for row, distance in found]
            return sorted(nearby, key=lambda n: (n.distance_m, n.feature.id))

        return await self._registry.transaction("features_within", query)

    async def in_bbox(
        self, west: float, south: float, east: float, north: float, *, layers: Iterable[Layer | str] | None = None
    ) -> list[StoredFeature]:
        """Features of ``layers`` (default: all) that intersect the box, edges included, by layer and id.
        The box must have an area (west < east, south < north)."""
        box = _area_box(west, south, east, north)
        chosen = [layer_of(layer, "layers") for layer in (layers if layers is not None else CATALOGUE)]
        where = [layer_features.c.layer.in_([layer.value for layer in chosen])]
        return await self._registry.transaction(
            "features_in_bbox", lambda c: [_stored(row) for row in self._spatial.in_box(c, where, box)]
        )


def _area_box(west: float, south: float, east: float, north: float) -> Box:
    box = check_box(west, south, east, north)
    if west == east:
        raise InvalidFieldError("east", "must be east of west: the box needs an area")
    if south == north:
        raise InvalidFieldError("north", "must be north of south: the box needs an area")
    return box


def _snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in values.items()}


def visible_layers(layers: Sequence[Layer], *, staff: bool) -> list[Layer]:
    """The layers a caller may see: all for staff, the public ones for anyone else."""
    return [layer for layer in layers if staff or CATALOGUE[layer].visibility is Visibility.PUBLIC]
