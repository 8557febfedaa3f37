"""Builders of GeoJSON documents for the geo tests, and an independent transverse Mercator
(Krüger series) to check pyproj's reprojection against."""

from __future__ import annotations

import math
from typing import Any

#: a valid district polygon around the Kherson centre, lon/lat
SQUARE = [[[32.60, 46.63], [32.62, 46.63], [32.62, 46.65], [32.60, 46.65], [32.60, 46.63]]]


def polygon(rings: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": SQUARE if rings is None else rings}


def feature(
    geometry: Any = None, properties: Any = None, *, fid: Any = "f-1", omit: tuple[str, ...] = ()
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "Feature",
        "id": fid,
        "geometry": polygon() if geometry is None else geometry,
        "properties": {"name": "District"} if properties is None else properties,
    }
    for key in omit:
        item.pop(key)
    return item


def collection(*features: Any, **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", **members, "features": list(features)}


def named_crs(name: str) -> dict[str, Any]:
    return {"type": "name", "properties": {"name": name}}


def utm_forward(lon: float, lat: float, zone: int) -> tuple[float, float]:
    """WGS 84 lon/lat to UTM (northern hemisphere) easting/northing by the Krüger series to n^3
    (accurate to about a millimetre within 3,000 km of the central meridian), written from the
    textbook formula without pyproj."""
    a = 6378137.0
    f = 1 / 298.257223563
    k0, e0 = 0.9996, 500000.0
    n = f / (2 - f)
    big_a = a / (1 + n) * (1 + n**2 / 4 + n**4 / 64)
    alpha = (n / 2 - 2 * n**2 / 3 + 5 * n**3 / 16, 13 * n**2 / 48 - 3 * n**3 / 5, 61 * n**3 / 240)
    phi = math.radians(lat)
    dlam = math.radians(lon - (zone * 6 - 183))
    c = 2 * math.sqrt(n) / (1 + n)
    t = math.sinh(math.atanh(math.sin(phi)) - c * math.atanh(c * math.sin(phi)))
    xi = math.atan2(t, math.cos(dlam))
    eta = math.atanh(math.sin(dlam) / math.sqrt(1 + t * t))
    easting = e0 + k0 * big_a * (
        eta + sum(al * math.cos(2 * j * xi) * math.sinh(2 * j * eta) for j, al in enumerate(alpha, 1))
    )
    northing = (
        k0 * big_a * (xi + sum(al * math.sin(2 * j * xi) * math.cosh(2 * j * eta) for j, al in enumerate(alpha, 1)))
    )
    return easting, northing


def metres_between(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance by the local flat-earth approximation: exact enough for centimetre differences."""
    m_lat = 111_132.954 - 559.822 * math.cos(2 * math.radians(lat1))
    m_lon = 111_412.84 * math.cos(math.radians(lat1))
    return math.hypot((lon2 - lon1) * m_lon, (lat2 - lat1) * m_lat)
