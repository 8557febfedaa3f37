"""Generates the synthetic Kherson sample base in ``data/kherson/`` (one GeoJSON file per layer).

The geometry is made up: a grid of districts with jittered corners around 46.64 N, 32.61 E,
straight streets, a block of parcels, a water network along the streets. Every feature carries
``"synthetic": true`` and every file says so in its ``name`` and ``description``. It is
deterministic (pure arithmetic, a seeded :class:`random.Random`), so the committed files are
exactly what it writes; a test checks that. Regenerate with::

    python -m misto.cloud.geo.kherson_sample
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from misto.cloud.geo.layers import Layer

#: the sample's centre: Kherson, near the city centre
LAT0 = 46.64
LON0 = 32.61
DATA_DIR = Path(__file__).parent / "data" / "kherson"
NOTICE = (
    "SYNTHETIC sample data for the Misto demo and tests: made-up geometry placed around Kherson "
    "(46.64 N, 32.61 E). It is not the city's real {what}; replace it with the city's data (docs/geospatial.md)."
)

_PHI = math.radians(LAT0)
_M_PER_DEG_LAT = 111_132.954 - 559.822 * math.cos(2 * _PHI) + 1.175 * math.cos(4 * _PHI)
_M_PER_DEG_LON = 111_412.84 * math.cos(_PHI) - 93.5 * math.cos(3 * _PHI)

XY = tuple[float, float]


def lonlat(x: float, y: float) -> list[float]:
    """Local metres east/north of the centre to [lon, lat], rounded to 1e-7 degree (~1 cm)."""
    return [round(LON0 + x / _M_PER_DEG_LON, 7), round(LAT0 + y / _M_PER_DEG_LAT, 7)]


def _line(points: list[XY]) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [lonlat(x, y) for x, y in points]}


def _polygon(points: list[XY]) -> dict[str, Any]:
    ring = [lonlat(x, y) for x, y in points]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return _polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def _point(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": lonlat(x, y)}


def _strip(a: XY, b: XY, width: float) -> dict[str, Any]:
    """The rectangle of ``width`` metres centred on the segment a-b (counter-clockwise)."""
    (ax, ay), (bx, by) = a, b
    length = math.hypot(bx - ax, by - ay)
    nx, ny = -(by - ay) / length * width / 2, (bx - ax) / length * width / 2
    return _polygon([(ax - nx, ay - ny), (bx - nx, by - ny), (bx + nx, by + ny), (ax + nx, ay + ny)])


def _offset(a: XY, b: XY, distance: float) -> list[XY]:
    """The segment a-b moved ``distance`` metres to its left."""
    (ax, ay), (bx, by) = a, b
    length = math.hypot(bx - ax, by - ay)
    nx, ny = -(by - ay) / length * distance, (bx - ax) / length * distance
    return [(ax + nx, ay + ny), (bx + nx, by + ny)]


def _feature(fid: str, geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "id": fid, "geometry": geometry, "properties": {**properties, "synthetic": True}}


# --- the layers -------------------------------------------------------------------------------

DISTRICT_NAMES = [  # south row west to east, then north row; the centre is in Tsentralnyi
    ("Zakhidnyi", "Західний"),
    ("Prydniprovskyi", "Придніпровський"),
    ("Portovyi", "Портовий"),
    ("Skhidnyi", "Східний"),
    ("Pivnichno-Zakhidnyi", "Північно-Західний"),
    ("Stepovyi", "Степовий"),
    ("Tsentralnyi", "Центральний"),
    ("Pivnichno-Skhidnyi", "Північно-Східний"),
]
_COLUMNS = [-7000.0, -3800.0, -1200.0, 2600.0, 7000.0]
_ROWS = [-4500.0, -800.0, 4500.0]


def districts() -> list[dict[str, Any]]:
    """8 districts tiling a 14 x 9 km area: a 4 x 2 grid whose shared corners are jittered."""
    rng = random.Random(4664)  # noqa: S311 -- synthetic geometry, not a secret
    corners = {
        (i, j): (x + rng.uniform(-350, 350), y + rng.uniform(-350, 350))
        for i, x in enumerate(_COLUMNS)
        for j, y in enumerate(_ROWS)
    }
    features = []
    for j in range(len(_ROWS) - 1):
        for i in range(len(_COLUMNS) - 1):
            n = j * (len(_COLUMNS) - 1) + i
            name, name_uk = DISTRICT_NAMES[n]
            ring = [corners[i, j], corners[i + 1, j], corners[i + 1, j + 1], corners[i, j + 1]]
            features.append(
                _feature(
                    f"district-{n + 1}",
                    _polygon(ring),
                    name=f"{name} (synthetic)",
                    name_uk=name_uk,
                    code=f"SYN-{n + 1:02d}",
                    population=rng.randrange(20_000, 60_000, 100),
                )
            )
    return features


#: (id, name, class, start, end, carriageway width m, lanes)
STREETS: list[tuple[str, str, str, XY, XY, float, int]] = [
    ("street-1", "Richkova Avenue", "arterial", (-6000.0, -200.0), (6000.0, 400.0), 21.0, 6),
    ("street-2", "Soborna Street", "collector", (-300.0, -4000.0), (200.0, 4000.0), 14.0, 4),
    ("street-3", "Portova Street", "local", (-2500.0, -1500.0), (2500.0, -1300.0), 9.0, 2),
    ("street-4", "Sadova Street", "local", (1500.0, -3500.0), (1800.0, 3500.0), 9.0, 2),
]


def streets() -> list[dict[str, Any]]:
    return [
        _feature(sid, _line([a, b]), name=f"{name} (synthetic)", street_class=kind)
        for sid, name, kind, a, b, _, _ in STREETS
    ]


def carriageways() -> list[dict[str, Any]]:
    return [
        _feature(
            f"carriageway-{sid.split('-')[1]}",
            _strip(a, b, width),
            street_id=sid,
            lanes=lanes,
            surface="asphalt",
            width_m=width,
        )
        for sid, _, _, a, b, width, lanes in STREETS
    ]


def pavements() -> list[dict[str, Any]]:
    features = []
    for sid, _, _, a, b, width, _ in STREETS[:2]:
        for side, sign in (("left", 1), ("right", -1)):
            line = _offset(a, b, sign * (width / 2 + 2.5))
            features.append(
                _feature(
                    f"pavement-{sid.split('-')[1]}-{side}",
                    _line(line),
                    street_id=sid,
                    side=side,
                    surface="paving_stones",
                    width_m=3.0,
                )
            )
    return features


_BLOCK = (300.0, 700.0)  # south-west corner of the parcel block, metres
_PARCEL = (80.0, 60.0)  # parcel cell, metres
_USES = ["residential", "residential", "commercial", "residential", "public"]


def land_parcels() -> list[dict[str, Any]]:
    """20 parcels in a 5 x 4 block north-east of the centre, 5 m apart."""
    features = []
    for n in range(20):
        col, row = n % 5, n // 5
        x0 = _BLOCK[0] + col * (_PARCEL[0] + 5)
        y0 = _BLOCK[1] + row * (_PARCEL[1] + 5)
        features.append(
            _feature(
                f"parcel-{n + 1:02d}",
                _rect(x0, y0, x0 + _PARCEL[0], y0 + _PARCEL[1]),
                cadastral_number=f"6510100000:01:001:{n + 1:04d}",
                land_use=_USES[n % 5],
                ownership="municipal" if n % 5 == 4 else "private",
                area_m2=_PARCEL[0] * _PARCEL[1],
            )
        )
    return features


def buildings() -> list[dict[str, Any]]:
    """A building inside each of the first 10 parcels."""
    features = []
    for n in range(10):
        col, row = n % 5, n // 5
        x0 = _BLOCK[0] + col * (_PARCEL[0] + 5) + 15
        y0 = _BLOCK[1] + row * (_PARCEL[1] + 5) + 12
        features.append(
            _feature(
                f"building-{n + 1:02d}",
                _rect(x0, y0, x0 + 45 + 5 * (n % 3), y0 + 30),
                address=f"{n + 1} Synthetic Lane (synthetic)",
                use=_USES[n % 5],
                floors=2 + (n * 3) % 9,
                year_built=1955 + n * 6,
                parcel_id=f"parcel-{n + 1:02d}",
            )
        )
    return features


def _along(a: XY, b: XY, offset: float, parts: int) -> list[XY]:
    (ax, ay), (bx, by) = _offset(a, b, offset)
    return [(ax + (bx - ax) * k / parts, ay + (by - ay) * k / parts) for k in range(parts + 1)]


def water_network() -> list[dict[str, Any]]:
    s1, s2, s3, s4 = ((a, b) for _, _, _, a, b, _, _ in STREETS)
    lines = [
        ("water-1", _along(*s1, -14, 3), "transmission", 600, "steel", 1968),
        ("water-2", _along(*s2, 11, 2), "distribution", 300, "ductile_iron", 1979),
        ("water-3", _along(*s3, 8, 1), "distribution", 200, "cast_iron", 1961),
        ("water-4", _along(*s4, -8, 1), "distribution", 200, "pe", 2012),
        ("water-5", [(-89.0, 690.0), (1100.0, 690.0)], "distribution", 150, "pe", 2016),
        ("water-6", [(640.0, 690.0), (640.0, 960.0), (720.0, 960.0)], "service", 50, "pe", 2018),
    ]
    return [
        _feature(
            wid,
            _line(points),
            name=f"Water main {wid.split('-')[1]} (synthetic)",
            operator="Synthetic Vodokanal",
            function=function,
            diameter_mm=diameter,
            material=material,
            installed_year=year,
            depth_m=2.0,
        )
        for wid, points, function, diameter, material, year in lines
    ]


def sewer_network() -> list[dict[str, Any]]:
    (a1, b1), (a2, b2) = ((a, b) for _, _, _, a, b, _, _ in STREETS[:2])
    return [
        _feature("sewer-1", _line(_along(a1, b1, 16, 2)), system="sanitary", diameter_mm=800, material="concrete"),
        _feature("sewer-2", _line(_along(a2, b2, -12, 2)), system="storm", diameter_mm=500, material="pvc"),
    ]


def heating_network() -> list[dict[str, Any]]:
    return [
        _feature(
            "heating-1",
            _line([(-60.0, 300.0), (300.0, 640.0), (1100.0, 640.0)]),
            medium="hot_water",
            diameter_mm=250,
            material="steel",
            status="in_service",
        )
    ]


def power_network() -> list[dict[str, Any]]:
    return [
        _feature("power-1", _line(_along(*STREETS[0][3:5], 20, 2)), voltage_kv=10.0, placement="underground"),
        _feature("power-2", _line([(1900.0, -3000.0), (1900.0, 3000.0)]), voltage_kv=35.0, placement="overhead"),
    ]


def telecom_network() -> list[dict[str, Any]]:
    return [_feature("telecom-1", _line(_along(*STREETS[1][3:5], -18, 2)), cable="fibre", fibre_count=96)]


#: (id, name, x, y, protection, category, year): m-1 and m-2 lie within 500 m of the centre
MONUMENTS: list[tuple[str, str, float, float, str, str, int]] = [
    ("monument-1", "Founders' Monument", 150.0, 180.0, "national", "monumental_art", 1908),
    ("monument-2", "Old Arsenal", -300.0, -200.0, "national", "architecture", 1784),
    ("monument-3", "Admiralty Gate", 420.0, 380.0, "local", "architecture", 1825),
    ("monument-4", "Fortress Earthworks", 3000.0, 2500.0, "local", "archaeology", 1778),
]


def monuments() -> list[dict[str, Any]]:
    return [
        _feature(
            mid,
            _point(x, y),
            name=f"{name} (synthetic)",
            protection=protection,
            category=category,
            register_number=f"SYN-{mid.split('-')[1]}",
            year=year,
        )
        for mid, name, x, y, protection, category, year in MONUMENTS
    ]


def green_areas() -> list[dict[str, Any]]:
    return [
        _feature("green-1", _rect(-1500.0, 500.0, -700.0, 1200.0), name="Riverside Park (synthetic)", kind="park"),
        _feature("green-2", _rect(600.0, -600.0, 760.0, -470.0), name="Cathedral Square (synthetic)", kind="square"),
    ]


def natural_resources() -> list[dict[str, Any]]:
    river = [(-7000.0, -4700.0), (7000.0, -4700.0), (7000.0, -5600.0), (-7000.0, -5600.0)]
    return [
        _feature("resource-1", _polygon(river), name="Dnipro river (synthetic strip)", kind="river"),
        _feature("resource-2", _point(-5200.0, 3200.0), name="Well 1 (synthetic)", kind="groundwater_well"),
    ]


GENERATORS = {
    Layer.DISTRICTS: districts,
    Layer.STREETS: streets,
    Layer.CARRIAGEWAYS: carriageways,
    Layer.PAVEMENTS: pavements,
    Layer.LAND_PARCELS: land_parcels,
    Layer.BUILDINGS: buildings,
    Layer.WATER_NETWORK: water_network,
    Layer.SEWER_NETWORK: sewer_network,
    Layer.HEATING_NETWORK: heating_network,
    Layer.POWER_NETWORK: power_network,
    Layer.TELECOM_NETWORK: telecom_network,
    Layer.MONUMENTS: monuments,
    Layer.GREEN_AREAS: green_areas,
    Layer.NATURAL_RESOURCES: natural_resources,
}


def render(layer: Layer) -> str:
    """The file text of ``layer``: one feature per line, so diffs stay readable."""
    what = layer.value.replace("_", " ")
    head = {
        "type": "FeatureCollection",
        "name": f"Kherson sample base (synthetic): {what}",
        "description": NOTICE.format(what=what),
    }
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in GENERATORS[layer]()]
    opening = json.dumps(head, ensure_ascii=False)[:-1]
    return opening + ', "features": [\n' + ",\n".join(lines) + "\n]}\n"


def main(target: Path = DATA_DIR) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for layer in GENERATORS:
        (target / f"{layer.value}.geojson").write_text(render(layer), encoding="utf-8")


if __name__ == "__main__":
    main()
