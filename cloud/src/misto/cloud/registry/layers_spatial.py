"""Spatial queries on the layers' features (and on devices along a network line), one strategy per
dialect over the same columns, as :mod:`.spatial` does for devices.

* SQLite: the bounding-box columns (``west``, ``south``, ``east``, ``north``) select candidates in
  SQL; :mod:`misto.cloud.geo.measure` (shapely, pyproj) decides exactly.
* PostGIS: ``&&`` on the GiST index of ``ST_SetSRID(ST_GeomFromGeoJSON(geometry), 4326)``
  (:data:`~misto.cloud.registry.tables.POSTGIS_FEATURE_EXPRESSION`) selects candidates, then
  ``ST_Covers``, ``ST_DWithin`` / ``ST_Distance`` on ``geography`` (the WGS 84 spheroid) and
  ``ST_Intersects`` decide in SQL.

A point on a polygon's boundary is inside it (``ST_Covers``, shapely ``covers``), so a point on the
border of two districts is in both, as in :func:`misto.cloud.geo.spatial.containing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa

from misto.cloud.geo import measure
from misto.cloud.geo.layers import POLYGONS, GeometryType
from misto.cloud.registry.errors import InvalidFieldError, NotFoundError
from misto.cloud.registry.spatial import _POINT, Box, _between, _overlaps, search_boxes
from misto.cloud.registry.tables import POSTGIS_FEATURE_EXPRESSION, devices, layer_features

MAX_DISTANCE_M = 1_000_000.0
_POLYGON_TYPES = sorted(t.value for t in POLYGONS)
_LINE_TYPES = frozenset({GeometryType.LINE_STRING.value, GeometryType.MULTI_LINE_STRING.value})

Where = Sequence[sa.ColumnElement[bool]]


def check_distance(name: str, distance_m: float) -> None:
    if not (math.isfinite(distance_m) and 0 <= distance_m <= MAX_DISTANCE_M):
        raise InvalidFieldError(name, f"{distance_m} must be between 0 and {MAX_DISTANCE_M:.0f} metres")


def _bbox_overlaps(box: Box) -> sa.ColumnElement[bool]:
    """The feature's bounding box meets ``box`` (edges included)."""
    c = layer_features.c
    return sa.and_(c.west <= box.east, c.east >= box.west, c.south <= box.north, c.north >= box.south)


def _window_boxes(west: float, south: float, east: float, north: float, distance_m: float) -> list[Box]:
    """Boxes (split at the antimeridian) that hold everything within ``distance_m`` of the envelope."""
    w, s, e, n = measure.window((west, south, east, north), distance_m)
    if e - w >= 360.0:
        return [Box(-180.0, s, 180.0, n)]
    if w < -180.0:
        return [Box(w + 360.0, s, 180.0, n), Box(-180.0, s, e, n)]
    if e > 180.0:
        return [Box(w, s, 180.0, n), Box(-180.0, s, e - 360.0, n)]
    return [Box(w, s, e, n)]


def line_feature(conn: sa.Connection, layer: str, feature_id: str) -> sa.Row[Any]:
    """The stored line feature ``layer/feature_id``; not found, or not a line: an error naming it."""
    row = conn.execute(
        sa.select(layer_features).where(layer_features.c.layer == layer, layer_features.c.feature_id == feature_id)
    ).first()
    if row is None:
        raise NotFoundError(f"{layer} feature", feature_id)
    if row.geometry_type not in _LINE_TYPES:
        raise InvalidFieldError("feature", f"{layer}/{feature_id} is a {row.geometry_type}, not a line")
    return row


class FeatureSpatial(Protocol):
    def containing(self, conn: sa.Connection, layer: str, lon: float, lat: float) -> list[sa.Row[Any]]: ...

    def within(
        self, conn: sa.Connection, layer: str, lon: float, lat: float, radius_m: float
    ) -> list[tuple[sa.Row[Any], float]]: ...

    def in_box(self, conn: sa.Connection, where: Where, box: Box) -> list[sa.Row[Any]]: ...

    def devices_along(
        self, conn: sa.Connection, where: Where, line: sa.Row[Any], distance_m: float
    ) -> list[tuple[sa.Row[Any], float]]: ...


class SqliteFeatureSpatial:
    def containing(self, conn: sa.Connection, layer: str, lon: float, lat: float) -> list[sa.Row[Any]]:
        c = layer_features.c
        query = sa.select(layer_features).where(
            c.layer == layer,
            c.geometry_type.in_(_POLYGON_TYPES),
            _bbox_overlaps(Box(lon, lat, lon, lat)),
        )
        return [row for row in conn.execute(query) if measure.covers(row.geometry, lon, lat)]

    def within(
        self, conn: sa.Connection, layer: str, lon: float, lat: float, radius_m: float
    ) -> list[tuple[sa.Row[Any], float]]:
        boxes = sa.or_(*(_bbox_overlaps(box) for box in search_boxes(lon, lat, radius_m)))
        rows = conn.execute(sa.select(layer_features).where(layer_features.c.layer == layer, boxes))
        found = [(row, measure.distance_to_point_m(row.geometry, lon, lat)) for row in rows]
        return [(row, distance) for row, distance in found if distance <= radius_m]

    def in_box(self, conn: sa.Connection, where: Where, box: Box) -> list[sa.Row[Any]]:
        query = sa.select(layer_features).where(*where, _bbox_overlaps(box))
        rows = conn.execute(query.order_by(layer_features.c.layer, layer_features.c.feature_id))
        return [row for row in rows if measure.intersects_box(row.geometry, box.west, box.south, box.east, box.north)]

    def devices_along(
        self, conn: sa.Connection, where: Where, line: sa.Row[Any], distance_m: float
    ) -> list[tuple[sa.Row[Any], float]]:
        boxes = sa.or_(*(_between(b) for b in _window_boxes(line.west, line.south, line.east, line.north, distance_m)))
        rows = conn.execute(sa.select(devices).where(*where, devices.c.lon.is_not(None), boxes)).all()
        measured = measure.LineDistance(line.geometry)
        found = [(row, measured.to_point_m(row.lon, row.lat)) for row in rows]
        return [(row, distance) for row, distance in found if distance <= distance_m]


# The very expression of the GiST index, so the planner uses it.
_GEOM: sa.ColumnElement[Any] = sa.literal_column(POSTGIS_FEATURE_EXPRESSION)
_SRID: sa.ColumnElement[Any] = sa.literal_column("4326")


def _envelope(box: Box) -> sa.ColumnElement[Any]:
    return sa.func.ST_MakeEnvelope(box.west, box.south, box.east, box.north, _SRID)


def _point(lon: float, lat: float) -> sa.ColumnElement[Any]:
    return sa.func.ST_SetSRID(sa.func.ST_MakePoint(lon, lat), _SRID)


def _on_index(other: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return _GEOM.op("&&", is_comparison=True)(other)


class PostgisFeatureSpatial:
    @staticmethod
    def containing_query(layer: str, lon: float, lat: float) -> sa.Select[Any]:
        point = _point(lon, lat)
        return sa.select(layer_features).where(
            layer_features.c.layer == layer,
            layer_features.c.geometry_type.in_(_POLYGON_TYPES),
            _on_index(point),
            sa.func.ST_Covers(_GEOM, point),
        )

    @staticmethod
    def within_query(layer: str, lon: float, lat: float, radius_m: float) -> sa.Select[Any]:
        centre = sa.func.geography(_point(lon, lat))
        here = sa.func.geography(_GEOM)
        boxes = sa.or_(*(_on_index(_envelope(box)) for box in search_boxes(lon, lat, radius_m)))
        return sa.select(layer_features, sa.func.ST_Distance(here, centre).label("distance_m")).where(
            layer_features.c.layer == layer, boxes, sa.func.ST_DWithin(here, centre, radius_m)
        )

    @staticmethod
    def box_query(where: Where, box: Box) -> sa.Select[Any]:
        envelope = _envelope(box)
        return (
            sa.select(layer_features)
            .where(*where, _on_index(envelope), sa.func.ST_Intersects(_GEOM, envelope))
            .order_by(layer_features.c.layer, layer_features.c.feature_id)
        )

    @staticmethod
    def along_query(where: Where, line: sa.Row[Any], distance_m: float) -> sa.Select[Any]:
        path = sa.func.geography(sa.func.ST_SetSRID(sa.func.ST_GeomFromGeoJSON(line.geometry), _SRID))
        here = sa.func.geography(_POINT)
        boxes = _window_boxes(line.west, line.south, line.east, line.north, distance_m)
        return sa.select(devices, sa.func.ST_Distance(here, path).label("distance_m")).where(
            *where, sa.or_(*(_overlaps(box) for box in boxes)), sa.func.ST_DWithin(here, path, distance_m)
        )

    def containing(self, conn: sa.Connection, layer: str, lon: float, lat: float) -> list[sa.Row[Any]]:
        return list(conn.execute(self.containing_query(layer, lon, lat)).all())

    def within(
        self, conn: sa.Connection, layer: str, lon: float, lat: float, radius_m: float
    ) -> list[tuple[sa.Row[Any], float]]:
        rows = conn.execute(self.within_query(layer, lon, lat, radius_m)).all()
        return [(row, float(row.distance_m)) for row in rows]

    def in_box(self, conn: sa.Connection, where: Where, box: Box) -> list[sa.Row[Any]]:
        return list(conn.execute(self.box_query(where, box)).all())

    def devices_along(
        self, conn: sa.Connection, where: Where, line: sa.Row[Any], distance_m: float
    ) -> list[tuple[sa.Row[Any], float]]:
        rows = conn.execute(self.along_query(where, line, distance_m)).all()
        return [(row, float(row.distance_m)) for row in rows]


def for_dialect(name: str) -> FeatureSpatial:
    return PostgisFeatureSpatial() if name == "postgresql" else SqliteFeatureSpatial()


def devices_along(
    conn: sa.Connection, dialect: str, where: Where, *, layer: str, feature_id: str, distance_m: float
) -> list[tuple[sa.Row[Any], float]]:
    """Devices (filtered by ``where``) within ``distance_m`` geodesic metres of a stored line feature."""
    check_distance("distance_m", distance_m)
    return for_dialect(dialect).devices_along(conn, where, line_feature(conn, layer, feature_id), distance_m)
