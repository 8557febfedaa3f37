"""GeoJSON import: every kind of bad input is refused with its path, all problems at once; CRS
declarations and reprojection to WGS 84."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from cloud.tests.geo_support import SQUARE, collection, feature, metres_between, named_crs, polygon, utm_forward
from misto.cloud.geo.errors import GeoJSONError
from misto.cloud.geo.geojson import check_feature_collection, load_feature_collection
from misto.cloud.geo.layers import DistrictProperties, Layer

BOWTIE = [[[32.60, 46.63], [32.62, 46.65], [32.62, 46.63], [32.60, 46.65], [32.60, 46.63]]]
OPEN_RING = [SQUARE[0][:-1]]
HOLE_OUTSIDE = [SQUARE[0], [[32.70, 46.70], [32.71, 46.70], [32.71, 46.71], [32.70, 46.71], [32.70, 46.70]]]
MONUMENT = {"name": "M", "protection": "local", "category": "history"}


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


# (case id, layer, input, expected path, fragment of the message)
BAD: list[tuple[str, Layer, Any, str, str]] = [
    ("not-json", Layer.DISTRICTS, b'{"type": ', "$", "not valid JSON"),
    ("nan", Layer.DISTRICTS, '{"type": "FeatureCollection", "features": [], "x": NaN}', "$", "NaN"),
    ("not-utf8", Layer.DISTRICTS, b'\xff{"type": 1}', "$", "not UTF-8"),
    ("array", Layer.DISTRICTS, "[]", "$", "expected a GeoJSON FeatureCollection object"),
    ("wrong-type", Layer.DISTRICTS, {"type": "Feature", "features": []}, "type", '"FeatureCollection"'),
    ("no-features", Layer.DISTRICTS, {"type": "FeatureCollection"}, "features", "expected an array"),
    ("name-number", Layer.DISTRICTS, collection(name=3), "name", "expected a string"),
    ("feature-number", Layer.DISTRICTS, collection(3), "features[0]", "expected a Feature object"),
    ("feature-type", Layer.DISTRICTS, collection({**feature(), "type": "Point"}), "features[0].type", '"Feature"'),
    ("no-geometry", Layer.DISTRICTS, collection(feature(omit=("geometry",))), "features[0].geometry", "required"),
    ("null-geometry", Layer.DISTRICTS, collection({**feature(), "geometry": None}), "features[0].geometry", "null"),
    ("geometry-list", Layer.DISTRICTS, collection(feature([1])), "features[0].geometry", "geometry object"),
    (
        "type-not-allowed",
        Layer.DISTRICTS,
        collection(feature(_point(32.6, 46.6))),
        "features[0].geometry.type",
        "not allowed",
    ),
    (
        "collection",
        Layer.DISTRICTS,
        collection(feature({"type": "GeometryCollection", "geometries": []})),
        "features[0].geometry.type",
        "GeometryCollection is not supported",
    ),
    (
        "unknown-type",
        Layer.DISTRICTS,
        collection(feature({"type": "Circle"})),
        "features[0].geometry.type",
        "not a supported",
    ),
    (
        "no-coordinates",
        Layer.DISTRICTS,
        collection(feature({"type": "Polygon"})),
        "features[0].geometry.coordinates",
        "required",
    ),
    (
        "position-strings",
        Layer.DISTRICTS,
        collection(feature(polygon([[SQUARE[0][0], ["32.6", "46.6"], *SQUARE[0][2:]]]))),
        "features[0].geometry.coordinates[0][1]",
        "finite numbers",
    ),
    (
        "position-short",
        Layer.DISTRICTS,
        collection(feature(polygon([[SQUARE[0][0], [32.6], *SQUARE[0][2:]]]))),
        "features[0].geometry.coordinates[0][1]",
        "expected a position",
    ),
    (
        "position-bool",
        Layer.MONUMENTS,
        collection(feature({"type": "Point", "coordinates": [True, 46.6]}, MONUMENT)),
        "features[0].geometry.coordinates",
        "finite numbers",
    ),
    (
        "position-infinite",
        Layer.MONUMENTS,
        '{"type":"FeatureCollection","features":[{"type":"Feature","id":1,'
        '"geometry":{"type":"Point","coordinates":[1e400,46.6]},"properties":' + json.dumps(MONUMENT) + "}]}",
        "features[0].geometry.coordinates",
        "finite numbers",
    ),
    (
        "mixed-dimensions",
        Layer.DISTRICTS,
        collection(feature(polygon([[SQUARE[0][0], [*SQUARE[0][1], 5.0], *SQUARE[0][2:]]]))),
        "features[0].geometry.coordinates[0][1]",
        "3D position in a geometry whose first position is 2D",
    ),
    ("empty-polygon", Layer.DISTRICTS, collection(feature(polygon([]))), "features[0].geometry.coordinates", "empty"),
    (
        "ring-not-closed",
        Layer.DISTRICTS,
        collection(feature(polygon(OPEN_RING))),
        "features[0].geometry.coordinates[0]",
        "ring not closed",
    ),
    (
        "ring-too-short",
        Layer.DISTRICTS,
        collection(feature(polygon([[[32.6, 46.6], [32.7, 46.6], [32.6, 46.6]]]))),
        "features[0].geometry.coordinates[0]",
        "at least 4 positions",
    ),
    (
        "line-too-short",
        Layer.STREETS,
        collection(feature({"type": "LineString", "coordinates": [[32.6, 46.6]]}, {"name": "S"})),
        "features[0].geometry.coordinates",
        "at least 2 positions",
    ),
    (
        "line-degenerate",
        Layer.STREETS,
        collection(feature({"type": "LineString", "coordinates": [[32.6, 46.6], [32.6, 46.6]]}, {"name": "S"})),
        "features[0].geometry",
        "invalid geometry: Too few points",
    ),
    (
        "self-intersection",
        Layer.DISTRICTS,
        collection(feature(polygon(BOWTIE))),
        "features[0].geometry",
        "Self-intersection",
    ),
    (
        "hole-outside",
        Layer.DISTRICTS,
        collection(feature(polygon(HOLE_OUTSIDE))),
        "features[0].geometry",
        "Hole lies outside shell",
    ),
    (
        "overlapping-multipolygon",
        Layer.DISTRICTS,
        collection(feature({"type": "MultiPolygon", "coordinates": [SQUARE, SQUARE]})),
        "features[0].geometry",
        "invalid geometry",
    ),
    (
        "longitude-range",
        Layer.MONUMENTS,
        collection(feature(_point(200.0, 46.6), MONUMENT)),
        "features[0].geometry.coordinates",
        "outside WGS 84 bounds",
    ),
    (
        "latitude-range",
        Layer.MONUMENTS,
        collection(feature(_point(32.6, -91.0), MONUMENT)),
        "features[0].geometry.coordinates",
        "outside WGS 84 bounds",
    ),
    (
        "missing-name",
        Layer.DISTRICTS,
        collection(feature(properties={})),
        "features[0].properties.name",
        "Field required",
    ),
    (
        "null-properties",
        Layer.DISTRICTS,
        collection(feature(properties=None) | {"properties": None}),
        "features[0].properties.name",
        "required",
    ),
    (
        "extra-property",
        Layer.DISTRICTS,
        collection(feature(properties={"name": "D", "colour": "red"})),
        "features[0].properties.colour",
        "Extra inputs",
    ),
    (
        "odd-property-key",
        Layer.DISTRICTS,
        collection(feature(properties={"name": "D", "a b": 1})),
        'features[0].properties["a b"]',
        "Extra inputs",
    ),
    (
        "properties-array",
        Layer.DISTRICTS,
        collection(feature(properties=[1])),
        "features[0].properties",
        "expected an object",
    ),
    (
        "population-string",
        Layer.DISTRICTS,
        collection(feature(properties={"name": "D", "population": "3"})),
        "features[0].properties.population",
        "valid integer",
    ),
    (
        "synthetic-string",
        Layer.DISTRICTS,
        collection(feature(properties={"name": "D", "synthetic": "yes"})),
        "features[0].properties.synthetic",
        "boolean",
    ),
    (
        "extra-nested",
        Layer.DISTRICTS,
        collection(feature(properties={"name": "D", "extra": {"a": {"b": 1}}})),
        "features[0].properties.extra",
        "'a': expected a string",
    ),
    (
        "enum",
        Layer.MONUMENTS,
        collection(feature(_point(32.6, 46.6), {**MONUMENT, "protection": "world"})),
        "features[0].properties.protection",
        "'national'",
    ),
    (
        "cadastral-number",
        Layer.LAND_PARCELS,
        collection(feature(properties={"cadastral_number": "65101:1", "land_use": "residential"})),
        "features[0].properties.cadastral_number",
        "should match pattern",
    ),
    (
        "power-without-voltage",
        Layer.POWER_NETWORK,
        collection(feature({"type": "LineString", "coordinates": SQUARE[0][:2]}, {})),
        "features[0].properties.voltage_kv",
        "Field required",
    ),
    ("no-id", Layer.DISTRICTS, collection(feature(omit=("id",))), "features[0].id", "required"),
    ("id-object", Layer.DISTRICTS, collection(feature(fid={"a": 1})), "features[0].id", "non-empty string or integer"),
    ("id-blank", Layer.DISTRICTS, collection(feature(fid=" ")), "features[0].id", "non-empty string"),
    (
        "duplicate-id",
        Layer.DISTRICTS,
        collection(feature(), feature()),
        "features[1].id",
        "duplicate id 'f-1', first used by features[0]",
    ),
    (
        "id-mismatch",
        Layer.DISTRICTS,
        collection(feature(properties={"name": "D", "id": "other"})),
        "features[0].properties.id",
        "differs from the feature id",
    ),
    (
        "crs-unknown",
        Layer.DISTRICTS,
        collection(feature(), crs=named_crs("EPSG:999999")),
        "crs.properties.name",
        "not in the EPSG registry",
    ),
    (
        "crs-garbage",
        Layer.DISTRICTS,
        collection(feature(), crs=named_crs("+proj=merc")),
        "crs.properties.name",
        "expected",
    ),
    (
        "crs-vertical",
        Layer.DISTRICTS,
        collection(feature(), crs=named_crs("EPSG:5773")),
        "crs.properties.name",
        "not a horizontal",
    ),
    (
        "crs-link",
        Layer.DISTRICTS,
        collection(feature(), crs={"type": "link", "properties": {}}),
        "crs.type",
        "only named CRS",
    ),
    ("crs-string", Layer.DISTRICTS, collection(feature(), crs="EPSG:4326"), "crs", "expected a crs object"),
    (
        "crs-per-feature",
        Layer.DISTRICTS,
        collection(feature() | {"crs": named_crs("EPSG:4326")}),
        "features[0].crs",
        "not supported",
    ),
    (
        "outside-projection",
        Layer.MONUMENTS,
        collection(feature({"type": "Point", "coordinates": [1e12, 0]}, MONUMENT), crs=named_crs("EPSG:32636")),
        "features[0].geometry.coordinates",
        "outside the domain of EPSG:32636",
    ),
]


@pytest.mark.parametrize(("layer", "data", "path", "fragment"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_is_refused_naming_the_path(layer: Layer, data: Any, path: str, fragment: str) -> None:
    report = check_feature_collection(data, layer)
    assert not report.ok
    assert any(p.path == path and fragment in p.message for p in report.problems), [str(p) for p in report.problems]
    with pytest.raises(GeoJSONError) as caught:
        load_feature_collection(data, layer, source="upload.geojson")
    assert caught.value.problems == report.problems
    assert f"{path}: " in str(caught.value)
    assert "upload.geojson" in str(caught.value)


def test_a_good_collection_loads() -> None:
    data = load_feature_collection(json.dumps(collection(feature(), name="n", description="d")), Layer.DISTRICTS)
    assert [f.id for f in data.features] == ["f-1"]
    (only,) = data.features
    assert isinstance(only.properties, DistrictProperties)
    assert only.properties.name == "District"
    assert only.geometry == polygon()
    assert only.shape.area > 0
    assert (data.name, data.description, data.source_crs) == ("n", "d", "EPSG:4326")
    assert data.to_geojson()["features"][0]["properties"] == {"name": "District", "synthetic": False}


def test_the_input_is_not_changed() -> None:
    doc = collection(feature(), crs=named_crs("EPSG:32636"))
    doc["features"][0]["geometry"] = {"type": "Point", "coordinates": [500000, 5165000]}
    doc["features"][0]["properties"] = MONUMENT
    before = json.dumps(doc)
    load_feature_collection(doc, Layer.MONUMENTS)
    assert json.dumps(doc) == before


def test_the_dry_run_reports_every_problem_at_once() -> None:
    doc = collection(
        feature(fid="good"),
        feature(polygon(BOWTIE), fid="bowtie"),
        feature(polygon(OPEN_RING), {"colour": "red"}, fid="open"),
        feature(_point(32.6, 46.6), fid="point"),
        feature(fid="good"),
        "junk",
    )
    report = check_feature_collection(doc, Layer.DISTRICTS)
    assert [str(p) for p in report.problems] == [
        "features[1].geometry: invalid geometry: Self-intersection[32.61 46.64]",
        "features[2].geometry.coordinates[0]: ring not closed: first position [32.6, 46.63] differs from last "
        "[32.6, 46.65]",
        "features[2].properties.name: Field required",
        "features[2].properties.colour: Extra inputs are not permitted",
        "features[3].geometry.type: Point is not allowed in layer districts; it allows MultiPolygon, Polygon",
        "features[4].id: duplicate id 'good', first used by features[0]",
        "features[5]: expected a Feature object, got a string",
    ]
    assert [f.id for f in report.features] == ["good"]  # what passed, for the report; nothing is imported


def test_problems_in_one_geometry_are_capped_with_a_count() -> None:
    ring = [[float(x), 46.6] for x in range(400, 430)]
    ring.append(ring[0])  # 31 positions, all out of bounds
    report = check_feature_collection(collection(feature(polygon([ring]))), Layer.DISTRICTS)
    assert len(report.problems) == 11
    assert str(report.problems[-1]) == "features[0].geometry.coordinates: ... and 21 more problem(s)"


def test_an_unknown_layer_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="unknown layer 'roads'; known layers: districts"):
        check_feature_collection(collection(), "roads")


# --- CRS --------------------------------------------------------------------------------------

KNOWN = [(32.6169, 46.6354), (32.61, 46.64), (32.5, 46.7), (31.9, 46.4), (34.2, 47.1)]


@pytest.mark.parametrize(("lon", "lat"), KNOWN)
def test_utm_36n_lands_within_centimetres_of_known_coordinates(lon: float, lat: float) -> None:
    easting, northing = utm_forward(lon, lat, zone=36)
    doc = collection(feature({"type": "Point", "coordinates": [easting, northing]}, MONUMENT))
    for declared, argument in ((named_crs("urn:ogc:def:crs:EPSG::32636"), None), (None, "EPSG:32636")):
        members = {"crs": declared} if declared else {}
        data = load_feature_collection({**doc, **members}, Layer.MONUMENTS, source_crs=argument)
        got_lon, got_lat = data.features[0].geometry["coordinates"]
        assert metres_between(lon, lat, got_lon, got_lat) < 0.01
        assert data.source_crs == "EPSG:32636"


def test_the_utm_reference_formula_is_right_on_the_central_meridian() -> None:
    # On the central meridian: easting exactly 500 km, northing 0.9996 x the meridian arc, here
    # integrated numerically (Simpson) from the radius of curvature, independently of the series.
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    phi, steps = math.radians(46.64), 2000
    h = phi / steps
    radius = [a * (1 - e2) / (1 - e2 * math.sin(i * h) ** 2) ** 1.5 for i in range(steps + 1)]
    arc = h / 3 * (radius[0] + radius[-1] + 4 * sum(radius[1:-1:2]) + 2 * sum(radius[2:-1:2]))
    easting, northing = utm_forward(33.0, 46.64, zone=36)
    assert easting == pytest.approx(500000.0, abs=1e-6)
    assert northing == pytest.approx(0.9996 * arc, abs=0.001)


def test_a_polygon_in_ucs2000_is_reprojected_and_stays_valid() -> None:
    # EPSG:6385, UCS-2000 / Ukraine TM zone 11 (central meridian 33 E, false easting 300 km): 100 m square
    x0, y0 = 270000.0, 5166000.0
    ring = [[x0, y0], [x0 + 100, y0], [x0 + 100, y0 + 100], [x0, y0 + 100], [x0, y0]]
    data = load_feature_collection(collection(feature(polygon([ring])), crs=named_crs("EPSG:6385")), Layer.DISTRICTS)
    (only,) = data.features
    lon, lat = only.geometry["coordinates"][0][0]
    assert 32.55 < lon < 32.65
    assert 46.6 < lat < 46.7
    assert only.geometry["coordinates"][0][0] == only.geometry["coordinates"][0][-1]
    assert only.shape.is_valid
    assert data.source_crs == "EPSG:6385"


@pytest.mark.parametrize("name", ["EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326", "CRS84"])
def test_wgs84_declarations_leave_coordinates_alone(name: str) -> None:
    data = load_feature_collection(collection(feature(), crs=named_crs(name)), Layer.DISTRICTS, source_crs="EPSG:4326")
    assert data.features[0].geometry == polygon()


def test_a_declared_crs_that_contradicts_the_argument_is_refused() -> None:
    report = check_feature_collection(
        collection(feature(), crs=named_crs("EPSG:32636")), Layer.DISTRICTS, source_crs="EPSG:6384"
    )
    assert [str(p) for p in report.problems] == ["crs: declares EPSG:32636 but source_crs is EPSG:6384"]


def test_a_bad_source_crs_argument_is_a_problem_not_a_crash() -> None:
    report = check_feature_collection(collection(feature()), Layer.DISTRICTS, source_crs="Kherson local")
    assert [p.path for p in report.problems] == ["source_crs"]
    assert report.source_crs is None
