"""Spatial queries, one strategy per dialect, both over the same ``lon``/``lat`` columns.

* Radius: a bounding box that surely contains the circle (:func:`search_boxes`) selects
  candidates in SQL; then the exact geodesic test: ``ST_DWithin`` on ``geography`` (WGS 84
  spheroid) in PostGIS, :func:`misto.cloud.geo.crs.geodesic_distance_m` (pyproj, the same
  ellipsoid) on SQLite, so both answer alike.
* Box: ``&&`` with ``ST_MakeEnvelope`` in PostGIS (the index), then ``BETWEEN`` on the columns,
  which alone answers on SQLite; edges are inside on both.

PostGIS uses the GiST index on ``ST_SetSRID(ST_MakePoint(lon, lat), 4326)``; SQLite the index on
``(lat, lon)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from misto.cloud.geo.crs import geodesic_distance_m
from misto.cloud.registry.errors import InvalidFieldError
from misto.cloud.registry.tables import devices

#: metres per degree of latitude at the equator, where a degree is shortest (WGS 84)
_MIN_METRES_PER_DEGREE_LAT = 110_574.0
#: metres per degree of longitude at the equator; a parallel's degree is at least this times cos(lat)
_METRES_PER_DEGREE_LON = 111_319.0
_MARGIN = 1.01  # the box is a prefilter: err on the large side
_PAD_DEG = 1e-6  # and never let it collapse to a line or a point (radius 0)
MAX_RADIUS_M = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Box:
    west: float
    south: float
    east: float
    north: float


def check_point(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise InvalidFieldError("lon", f"{lon} is not a longitude in [-180, 180]")
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise InvalidFieldError("lat", f"{lat} is not a latitude in [-90, 90]")


def check_radius(radius_m: float) -> None:
    if not (math.isfinite(radius_m) and 0 <= radius_m <= MAX_RADIUS_M):
        raise InvalidFieldError("radius_m", f"{radius_m} must be between 0 and {MAX_RADIUS_M:.0f} metres")


def check_box(west: float, south: float, east: float, north: float) -> Box:
    check_point(west, south)
    check_point(east, north)
    if west > east:
        raise InvalidFieldError("west", f"{west} is east of east={east} (boxes across the antimeridian: query two)")
    if south > north:
        raise InvalidFieldError("south", f"{south} is north of north={north}")
    return Box(west, south, east, north)


def search_boxes(lon: float, lat: float, radius_m: float) -> list[Box]:
    """One or two boxes (split at the antimeridian) that contain every point within ``radius_m``."""
    dlat = radius_m / _MIN_METRES_PER_DEGREE_LAT * _MARGIN + _PAD_DEG
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    widest = math.cos(math.radians(max(abs(south), abs(north))))
    if north >= 90.0 or south <= -90.0 or widest <= 0:
        return [Box(-180.0, south, 180.0, north)]
    dlon = radius_m / (_METRES_PER_DEGREE_LON * widest) * _MARGIN + _PAD_DEG
    if dlon >= 180.0:
        return [Box(-180.0, south, 180.0, north)]
    west, east = lon - dlon, lon + dlon
    if west < -180.0:
        return [Box(west + 360.0, south, 180.0, north), Box(-180.0, south, east, north)]
    if east > 180.0:
        return [Box(west, south, 180.0, north), Box(-180.0, south, east - 360.0, north)]
    return [Box(west, south, east, north)]


class Spatial(Protocol):
    def within(
        self, conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], lon: float, lat: float, radius_m: float
    ) -> list[tuple[sa.Row[Any], float]]: ...

    def in_box(self, conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], box: Box) -> list[sa.Row[Any]]: ...


def _between(box: Box) -> sa.ColumnElement[bool]:
    return sa.and_(devices.c.lon.between(box.west, box.east), devices.c.lat.between(box.south, box.north))


class SqliteSpatial:
    def within(
        self, conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], lon: float, lat: float, radius_m: float
    ) -> list[tuple[sa.Row[Any], float]]:
        boxes = sa.or_(*(_between(box) for box in search_boxes(lon, lat, radius_m)))
        rows = conn.execute(sa.select(devices).where(*where, devices.c.lon.is_not(None), boxes)).all()
        found = [(row, geodesic_distance_m(lon, lat, row.lon, row.lat)) for row in rows]
        return [(row, distance) for row, distance in found if distance <= radius_m]

    def in_box(self, conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], box: Box) -> list[sa.Row[Any]]:
        query = sa.select(devices).where(*where, devices.c.lon.is_not(None), _between(box)).order_by(devices.c.id)
        return list(conn.execute(query).all())


# The very expression of the GiST index (tables.POSTGIS_LOCATION_EXPRESSION), so the planner uses it.
_POINT: sa.ColumnElement[Any] = sa.literal_column("ST_SetSRID(ST_MakePoint(devices.lon, devices.lat), 4326)")


def _overlaps(box: Box) -> sa.ColumnElement[bool]:
    envelope = sa.func.ST_MakeEnvelope(box.west, box.south, box.east, box.north, sa.literal_column("4326"))
    return _POINT.op("&&", is_comparison=True)(envelope)


class PostgisSpatial:
    @staticmethod
    def within_query(
        where: Sequence[sa.ColumnElement[bool]], lon: float, lat: float, radius_m: float
    ) -> sa.Select[Any]:
        centre = sa.func.geography(sa.func.ST_SetSRID(sa.func.ST_MakePoint(lon, lat), sa.literal_column("4326")))
        here = sa.func.geography(_POINT)
        boxes = sa.or_(*(_overlaps(box) for box in search_boxes(lon, lat, radius_m)))
        return sa.select(devices, sa.func.ST_Distance(here, centre).label("distance_m")).where(
            *where, boxes, sa.func.ST_DWithin(here, centre, radius_m)
        )

    @staticmethod
    def box_query(where: Sequence[sa.ColumnElement[bool]], box: Box) -> sa.Select[Any]:
        # && finds candidates in the index (its boxes are rounded outwards to float4), BETWEEN decides
        # exactly as on SQLite; ST_Intersects would miss points of a box of zero width or height.
        return sa.select(devices).where(*where, _overlaps(box), _between(box)).order_by(devices.c.id)

    def within(
        self, conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], lon: float, lat: float, radius_m: float
    ) -> list[tuple[sa.Row[Any], float]]:
        rows = conn.execute(self.within_query(where, lon, lat, radius_m)).all()
        return [(row, float(row.distance_m)) for row in rows]

    def in_box(self, conn: sa.Connection, where: Sequence[sa.ColumnElement[bool]], box: Box) -> list[sa.Row[Any]]:
        return list(conn.execute(self.box_query(where, box)).all())


def for_dialect(name: str) -> Spatial:
    return PostgisSpatial() if name == "postgresql" else SqliteSpatial()
