"""Spatial helpers on the sample base, checked against independent computations: geodesic
distances with pyproj's Geod, polygon distances in UTM 36N with shapely."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Point

from misto.cloud.geo.errors import SpatialQueryError
from misto.cloud.geo.geojson import Feature
from misto.cloud.geo.layers import Layer
from misto.cloud.geo.sample import load_sample_base
from misto.cloud.geo.spatial import BBox, along_line, containing, in_bbox, within_radius

CENTRE = (32.61, 46.64)
GEOD = Geod(ellps="WGS84")
TO_UTM = Transformer.from_crs("EPSG:4326", "EPSG:32636", always_xy=True)


@pytest.fixture(scope="module")
def layers() -> dict[Layer, list[Feature]]:
    return {layer: list(data.features) for layer, data in load_sample_base().items()}


def _utm_distance(a: Feature, lon: float, lat: float) -> float:
    utm = shapely.transform(a.shape, _to_utm)
    return float(utm.distance(Point(*TO_UTM.transform(lon, lat))))


def _to_utm(coords: Any) -> Any:
    out = coords.copy()
    out[:, 0], out[:, 1] = TO_UTM.transform(coords[:, 0], coords[:, 1])
    return out


def test_the_centre_is_in_the_central_district(layers: dict[Layer, list[Feature]]) -> None:
    (district,) = containing(layers[Layer.DISTRICTS], *CENTRE)
    assert district.id == "district-7"
    assert district.properties.name == "Tsentralnyi (synthetic)"


def test_every_point_of_the_city_is_in_exactly_one_district_off_the_borders(layers: dict[Layer, list[Feature]]) -> None:
    districts = layers[Layer.DISTRICTS]
    for feature in layers[Layer.LAND_PARCELS] + layers[Layer.BUILDINGS] + layers[Layer.MONUMENTS]:
        point = feature.shape.representative_point()
        found = containing(districts, point.x, point.y)
        assert [d.id for d in found] == [d.id for d in districts if d.shape.contains(point)]
        assert len(found) == 1, feature.id


def test_a_point_on_a_shared_corner_is_in_every_district_that_meets_there(layers: dict[Layer, list[Feature]]) -> None:
    corner = layers[Layer.DISTRICTS][0].geometry["coordinates"][0][2]  # district-1's north-east corner
    assert [d.id for d in containing(layers[Layer.DISTRICTS], *corner)] == [
        "district-1",
        "district-2",
        "district-5",
        "district-6",
    ]


def test_a_point_outside_the_city_is_in_no_district(layers: dict[Layer, list[Feature]]) -> None:
    assert containing(layers[Layer.DISTRICTS], 32.0, 46.0) == []
    assert containing(layers[Layer.MONUMENTS] + layers[Layer.STREETS], *CENTRE) == []  # not polygons


def test_monuments_within_500_m_of_the_centre(layers: dict[Layer, list[Feature]]) -> None:
    found = within_radius(layers[Layer.MONUMENTS], *CENTRE, 500)
    assert [n.feature.id for n in found] == ["monument-1", "monument-2"]
    for nearby in found:
        lon, lat = nearby.feature.geometry["coordinates"]
        _, _, geodesic = GEOD.inv(*CENTRE, lon, lat)
        assert nearby.distance_m == pytest.approx(geodesic, abs=0.001)
    assert found[0].distance_m == pytest.approx(234.3, abs=0.5)  # (150 m, 180 m) from the centre
    assert [n.feature.id for n in within_radius(layers[Layer.MONUMENTS], *CENTRE, 600)] == [
        "monument-1",
        "monument-2",
        "monument-3",
    ]


def test_polygon_distances_match_utm(layers: dict[Layer, list[Feature]]) -> None:
    lon, lat = 32.6165, 46.6495
    parcels = layers[Layer.LAND_PARCELS]
    found = within_radius(parcels, lon, lat, 150)
    expected = sorted((p for p in parcels if _utm_distance(p, lon, lat) <= 150), key=lambda p: p.id)
    assert sorted(n.feature.id for n in found) == [p.id for p in expected]
    assert len(found) >= 3
    for nearby in found:
        # UTM's scale factor here (~0.99962) stretches 150 m by ~6 cm
        assert nearby.distance_m == pytest.approx(_utm_distance(nearby.feature, lon, lat), rel=1e-3, abs=0.01)
    inside = [n for n in found if n.distance_m == 0]
    assert [n.feature.id for n in inside] == [p.id for p in parcels if p.shape.covers(Point(lon, lat))]


def test_features_along_a_water_main(layers: dict[Layer, list[Feature]]) -> None:
    (main,) = [f for f in layers[Layer.WATER_NETWORK] if f.id == "water-5"]  # along the parcels' south edge
    parcels = along_line(layers[Layer.LAND_PARCELS], main, 15)
    assert sorted(n.feature.id for n in parcels) == [f"parcel-{n:02d}" for n in range(1, 6)]
    assert all(n.distance_m == pytest.approx(10.0, abs=0.05) for n in parcels)
    buildings = along_line(layers[Layer.BUILDINGS], main, 30)
    assert sorted(n.feature.id for n in buildings) == [f"building-{n:02d}" for n in range(1, 6)]
    network = along_line(layers[Layer.WATER_NETWORK], main, 1)
    assert main.id not in [n.feature.id for n in network]
    assert "water-6" in [n.feature.id for n in network]  # its service branch starts on it


def test_along_a_line_given_as_positions(layers: dict[Layer, list[Feature]]) -> None:
    found = along_line(layers[Layer.MONUMENTS], [(32.60, 46.6384), (32.62, 46.6384)], 100)
    assert [n.feature.id for n in found] == ["monument-2"]


def test_everything_in_a_bounding_box(layers: dict[Layer, list[Feature]]) -> None:
    everything = [f for features in layers.values() for f in features]
    (monument,) = [f for f in layers[Layer.MONUMENTS] if f.id == "monument-1"]
    lon, lat = monument.geometry["coordinates"]
    small = in_bbox(everything, BBox(lon - 0.0001, lat - 0.0001, lon + 0.0001, lat + 0.0001))
    assert [f.id for f in small] == ["district-7", "monument-1"]
    west, south, east, north = 32.6140, 46.6460, 32.6210, 46.6510
    box_hits = in_bbox(everything, BBox(west, south, east, north))
    assert {f.layer for f in box_hits} >= {Layer.LAND_PARCELS, Layer.BUILDINGS, Layer.DISTRICTS}
    assert len(in_bbox(everything, BBox(32.4, 46.5, 32.8, 46.8))) == len(everything)
    assert in_bbox(everything, BBox(30.0, 45.0, 30.1, 45.1)) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda fs: containing(fs, 200.0, 46.0),
        lambda fs: within_radius(fs, 32.6, 95.0, 10),
        lambda fs: within_radius(fs, 32.6, 46.6, -1),
        lambda fs: within_radius(fs, 32.6, 46.6, float("nan")),
        lambda fs: along_line(fs, [(32.6, 46.6)], 10),
        lambda fs: along_line(fs, fs[0], 10),  # a district is not a line
        lambda fs: BBox(32.7, 46.6, 32.6, 46.7),
        lambda fs: BBox(32.6, 46.6, 32.7, 91.0),
    ],
)
def test_bad_query_arguments_are_refused(layers: dict[Layer, list[Feature]], call: object) -> None:
    assert callable(call)
    with pytest.raises(SpatialQueryError):
        call(layers[Layer.DISTRICTS])
