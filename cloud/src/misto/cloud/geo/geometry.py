"""Checks of one GeoJSON geometry's coordinates: structure, positions, rings, reprojection to
WGS 84 and bounds, and validity per GEOS (shapely's ``explain_validity``). Used by
:mod:`.geojson`, which reports the problems with the feature's path."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from shapely.geometry import shape
from shapely.validation import explain_validity

from misto.cloud.geo import crs as crs_mod
from misto.cloud.geo.errors import Problem
from misto.cloud.geo.layers import GeometryType

#: nesting of arrays above the positions, per geometry type
_DEPTH = {
    GeometryType.POINT: 0,
    GeometryType.MULTI_POINT: 1,
    GeometryType.LINE_STRING: 1,
    GeometryType.MULTI_LINE_STRING: 2,
    GeometryType.POLYGON: 2,
    GeometryType.MULTI_POLYGON: 3,
}
#: problems reported per geometry before the rest are summarised
MAX_GEOMETRY_PROBLEMS = 10
Index = tuple[int, ...]


class GeometryChecker:
    """Checks the coordinates of one geometry; collects its problems and its positions."""

    def __init__(self, path: str, crs: crs_mod.CrsInfo | None) -> None:
        self.path = path
        self.crs = crs
        self.problems: list[Problem] = []
        self.positions: list[tuple[Index, list[float]]] = []

    def add(self, index: Index, message: str) -> None:
        self.problems.append(Problem(self.path + "".join(f"[{i}]" for i in index), message))

    def summary(self) -> list[Problem]:
        if len(self.problems) <= MAX_GEOMETRY_PROBLEMS:
            return self.problems
        more = len(self.problems) - MAX_GEOMETRY_PROBLEMS
        return [*self.problems[:MAX_GEOMETRY_PROBLEMS], Problem(self.path, f"... and {more} more problem(s)")]

    def check(self, gtype: GeometryType, raw: object) -> Any:
        if raw is None:
            self.add((), "required")
            return None
        before = len(self.problems)
        coords = self.walk(raw, _DEPTH[gtype], ())
        if coords is None or len(self.problems) > before:
            return None
        dimensions = {len(p) for _, p in self.positions}
        if len(dimensions) > 1:
            first = len(self.positions[0][1])
            index, odd = next((i, p) for i, p in self.positions if len(p) != first)
            self.add(index, f"{len(odd)}D position in a geometry whose first position is {first}D")
            return None
        self.shape_rules(gtype, coords)
        return coords if len(self.problems) == before else None

    def walk(self, raw: object, depth: int, index: Index) -> Any:
        if depth == 0:
            return self.position(raw, index)
        if not isinstance(raw, list):
            self.add(index, f"expected an array, got {kind_of(raw)}")
            return None
        if not raw:
            self.add(index, "empty array")
            return None
        parts = [self.walk(item, depth - 1, (*index, i)) for i, item in enumerate(raw)]
        return None if any(p is None for p in parts) else parts

    def position(self, raw: object, index: Index) -> list[float] | None:
        if not isinstance(raw, list) or not 2 <= len(raw) <= 3:
            self.add(index, f"expected a position [x, y] or [x, y, z], got {show(raw)}")
            return None
        values: list[float] = []
        for value in raw:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                self.add(index, f"expected finite numbers, got {show(raw)}")
                return None
            values.append(float(value))
        self.positions.append((index, values))
        return values

    def shape_rules(self, gtype: GeometryType, coords: list[Any]) -> None:
        if gtype is GeometryType.LINE_STRING:
            self.line(coords, ())
        elif gtype is GeometryType.MULTI_LINE_STRING:
            for i, line in enumerate(coords):
                self.line(line, (i,))
        elif gtype is GeometryType.POLYGON:
            self.polygon(coords, ())
        elif gtype is GeometryType.MULTI_POLYGON:
            for i, polygon in enumerate(coords):
                self.polygon(polygon, (i,))

    def line(self, line: list[list[float]], index: Index) -> None:
        if len(line) < 2:
            self.add(index, f"a line needs at least 2 positions, got {len(line)}")

    def polygon(self, rings: list[list[list[float]]], index: Index) -> None:
        for r, ring in enumerate(rings):
            if len(ring) < 4:
                self.add((*index, r), f"a ring needs at least 4 positions, got {len(ring)}")
            elif ring[0][:2] != ring[-1][:2]:
                self.add((*index, r), f"ring not closed: first position {ring[0]} differs from last {ring[-1]}")

    def reproject(self) -> bool:
        """Reproject the positions in place (they are this checker's copies) and check they lie
        within WGS 84 bounds. Returns whether all did."""
        if self.crs is not None and not self.crs.wgs84:
            xs = [p[0] for _, p in self.positions]
            ys = [p[1] for _, p in self.positions]
            lons, lats = crs_mod.to_wgs84(self.crs.code, xs, ys)
            for (_, position), lon, lat in zip(self.positions, lons, lats, strict=True):
                position[0], position[1] = lon, lat
        bad = [(index, p) for index, p in self.positions if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)]
        for index, p in bad:
            if self.crs is not None and not self.crs.wgs84:
                self.add(index, f"outside the domain of {self.crs.code}: reprojects to ({p[0]}, {p[1]})")
            else:
                self.add(index, f"({p[0]}, {p[1]}) is outside WGS 84 bounds (longitude -180..180, latitude -90..90)")
        return not bad

    def validity(self, geometry: Mapping[str, Any], path: str) -> None:
        geom = shape(dict(geometry))
        if not geom.is_valid:
            self.problems.append(Problem(path, f"invalid geometry: {explain_validity(geom)}"))


def kind_of(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(
        type(value), "an object" if isinstance(value, Mapping) else type(value).__name__
    )


def show(value: object) -> str:
    text = json.dumps(value) if _jsonable(value) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
