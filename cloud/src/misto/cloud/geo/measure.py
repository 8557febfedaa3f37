"""Exact spatial tests on one stored geometry (GeoJSON in WGS 84), for the registry's SQLite
queries: the database narrows the candidates by bounding box, these decide. PostGIS answers the
same questions in SQL; both are checked against :mod:`.spatial` on the sample base.

Distances are geodesic metres, measured as :mod:`.spatial` measures them: in an azimuthal
equidistant projection centred on the query point (exact from it) or on the query line's centre."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import shapely
from shapely.geometry import Point, box, shape
from shapely.geometry.base import BaseGeometry

from misto.cloud.geo.crs import LocalProjection
from misto.cloud.geo.errors import SpatialQueryError

#: metres per degree of latitude, rounded down: a safe bound for a search window
_M_PER_DEG_LAT_MIN = 110_500.0

Bounds = tuple[float, float, float, float]


def parse(geometry: str | Mapping[str, Any]) -> BaseGeometry:
    """A GeoJSON geometry (text or parsed) as a shapely geometry."""
    data = json.loads(geometry) if isinstance(geometry, str) else dict(geometry)
    return shape(data)


def bounds(geometry: Mapping[str, Any]) -> Bounds:
    """(west, south, east, north) of a GeoJSON geometry."""
    west, south, east, north = parse(geometry).bounds
    return float(west), float(south), float(east), float(north)


def covers(geometry: str | BaseGeometry, lon: float, lat: float) -> bool:
    """Whether the geometry contains the point, its boundary included."""
    found = parse(geometry) if isinstance(geometry, str) else geometry
    return bool(found.covers(Point(lon, lat)))


def distance_to_point_m(geometry: str | BaseGeometry, lon: float, lat: float) -> float:
    """Geodesic metres from the point to the nearest part of the geometry (0 inside it)."""
    found = parse(geometry) if isinstance(geometry, str) else geometry
    return float(_project(found, LocalProjection(lon, lat)).distance(Point(0.0, 0.0)))


class LineDistance:
    """Distances from one line (a network pipe or cable) to points, in geodesic metres."""

    def __init__(self, geometry: str | BaseGeometry) -> None:
        line = parse(geometry) if isinstance(geometry, str) else geometry
        if line.geom_type not in {"LineString", "MultiLineString"}:
            raise SpatialQueryError(f"expected a line, got a {line.geom_type}")
        west, south, east, north = line.bounds
        self._projection = LocalProjection((west + east) / 2, (south + north) / 2)
        self._line = _project(line, self._projection)

    def to_point_m(self, lon: float, lat: float) -> float:
        x, y = self._projection.forward(lon, lat)
        return float(self._line.distance(Point(float(x), float(y))))


def intersects_box(geometry: str | BaseGeometry, west: float, south: float, east: float, north: float) -> bool:
    """Whether the geometry intersects the box, touching its edge included."""
    found = parse(geometry) if isinstance(geometry, str) else geometry
    return bool(found.intersects(box(west, south, east, north)))


def window(envelope: Bounds, distance_m: float) -> Bounds:
    """A lon/lat box that surely holds everything within ``distance_m`` of the envelope."""
    west, south, east, north = envelope
    dlat = distance_m / _M_PER_DEG_LAT_MIN * 1.01 + 1e-6
    widest = min(max(abs(south), abs(north)) + dlat, 89.9)
    dlon = min(dlat / math.cos(math.radians(widest)), 360.0)
    return west - dlon, max(-90.0, south - dlat), east + dlon, min(90.0, north + dlat)


def _project(geometry: BaseGeometry, projection: LocalProjection) -> BaseGeometry:
    def forward(coords: Any) -> Any:  # an (n, 2) array of lon, lat
        projected = coords.copy()
        projected[:, 0], projected[:, 1] = projection.forward(coords[:, 0], coords[:, 1])
        return projected

    return shapely.transform(geometry, forward)
