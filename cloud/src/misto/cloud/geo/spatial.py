"""Spatial queries on lists of validated features, in memory (shapely and pyproj): which polygon
contains a point, what lies within a radius of a point or along a line, what a bounding box
holds. The registry's PostGIS queries answer the same questions; these functions are the
reference they are checked against.

Distances are geodesic metres on WGS 84: geometries are projected to an azimuthal equidistant
projection centred on the query point (exact for distances from it) or on the query line's
centre (within ~1 ppm over a city), as PostGIS ``ST_DWithin`` on ``geography`` measures them to
well under a millimetre at city scale."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import LineString, Point, box
from shapely.geometry.base import BaseGeometry

from misto.cloud.geo.crs import LocalProjection
from misto.cloud.geo.errors import SpatialQueryError
from misto.cloud.geo.geojson import Feature
from misto.cloud.geo.layers import POLYGONS

#: metres per degree of latitude, rounded down: a safe bound for the cheap pre-filter
_M_PER_DEG_LAT_MIN = 110_500.0


@dataclass(frozen=True, slots=True)
class BBox:
    """A WGS 84 bounding box; ``west`` <= ``east`` (boxes across the antimeridian are not supported)."""

    west: float
    south: float
    east: float
    north: float

    def __post_init__(self) -> None:
        _check_lon_lat(self.west, self.south)
        _check_lon_lat(self.east, self.north)
        if self.west > self.east or self.south > self.north:
            raise SpatialQueryError(f"bbox {self}: west must be <= east and south <= north")


@dataclass(frozen=True, slots=True)
class Nearby:
    """A feature found near the query and its geodesic distance to it in metres (0 if touching)."""

    feature: Feature
    distance_m: float


def containing(features: Iterable[Feature], lon: float, lat: float) -> list[Feature]:
    """The polygonal features that contain the point, its boundary included, sorted by id (a point
    on the border of two districts is in both)."""
    _check_lon_lat(lon, lat)
    point = Point(lon, lat)
    found = [f for f in features if f.geometry_type in POLYGONS and f.shape.covers(point)]
    return sorted(found, key=lambda f: f.id)


def within_radius(features: Iterable[Feature], lon: float, lat: float, radius_m: float) -> list[Nearby]:
    """The features whose nearest part lies within ``radius_m`` geodesic metres of the point,
    nearest first (ties by id)."""
    _check_lon_lat(lon, lat)
    _check_distance(radius_m)
    projection = LocalProjection(lon, lat)
    origin = Point(0.0, 0.0)
    window = _window(box(lon, lat, lon, lat), radius_m)
    found = []
    for feature in features:
        if not feature.shape.intersects(window):
            continue
        distance = _project(feature.shape, projection).distance(origin)
        if distance <= radius_m:
            found.append(Nearby(feature, distance))
    return sorted(found, key=lambda n: (n.distance_m, n.feature.id))


def along_line(
    features: Iterable[Feature], line: Feature | Sequence[tuple[float, float]], buffer_m: float
) -> list[Nearby]:
    """The features within ``buffer_m`` metres of a line (a line feature, such as a water main,
    or a list of (lon, lat)), nearest first. A line feature itself is skipped in the results."""
    _check_distance(buffer_m)
    if isinstance(line, Feature):
        geometry = line.shape
        skip = line.id, line.layer
    else:
        if len(line) < 2:
            raise SpatialQueryError("a line needs at least 2 positions")
        for lon, lat in line:
            _check_lon_lat(lon, lat)
        geometry = LineString(line)
        skip = None
    if geometry.geom_type not in {"LineString", "MultiLineString"}:
        raise SpatialQueryError(f"expected a line, got a {geometry.geom_type}")
    west, south, east, north = geometry.bounds
    projection = LocalProjection((west + east) / 2, (south + north) / 2)
    local_line = _project(geometry, projection)
    window = _window(geometry.envelope, buffer_m)
    found = []
    for feature in features:
        if (feature.id, feature.layer) == skip or not feature.shape.intersects(window):
            continue
        distance = _project(feature.shape, projection).distance(local_line)
        if distance <= buffer_m:
            found.append(Nearby(feature, distance))
    return sorted(found, key=lambda n: (n.distance_m, n.feature.id))


def in_bbox(features: Iterable[Feature], bbox: BBox) -> list[Feature]:
    """The features that intersect the box (touching its edge counts), sorted by id."""
    area = box(bbox.west, bbox.south, bbox.east, bbox.north)
    return sorted((f for f in features if f.shape.intersects(area)), key=lambda f: f.id)


def _project(geometry: BaseGeometry, projection: LocalProjection) -> BaseGeometry:
    def forward(coords: Any) -> Any:  # an (n, 2) array of lon, lat
        projected = coords.copy()
        projected[:, 0], projected[:, 1] = projection.forward(coords[:, 0], coords[:, 1])
        return projected

    return shapely.transform(geometry, forward)


def _window(envelope: BaseGeometry, distance_m: float) -> BaseGeometry:
    """A lon/lat box that surely holds everything within ``distance_m`` of ``envelope``."""
    west, south, east, north = envelope.bounds
    dlat = distance_m / _M_PER_DEG_LAT_MIN * 1.01 + 1e-6
    widest = min(max(abs(south), abs(north)) + dlat, 89.9)
    dlon = min(dlat / math.cos(math.radians(widest)), 360.0)
    return box(west - dlon, south - dlat, east + dlon, north + dlat)


def _check_lon_lat(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise SpatialQueryError(f"({lon}, {lat}) is not a WGS 84 longitude, latitude")


def _check_distance(distance_m: float) -> None:
    if not (math.isfinite(distance_m) and 0 <= distance_m <= 1_000_000):
        raise SpatialQueryError(f"distance {distance_m} m: expected 0 to 1,000,000 metres")
