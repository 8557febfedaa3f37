"""The synthetic Kherson sample base: it validates, it is what the generator writes, it says it is
synthetic everywhere, and its geometry is coherent (districts tile, buildings sit in parcels)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from shapely.geometry import Polygon
from shapely.ops import unary_union

from misto.cloud.geo import kherson_sample
from misto.cloud.geo.geojson import LayerData
from misto.cloud.geo.layers import CATALOGUE, BuildingProperties, Layer
from misto.cloud.geo.sample import load_sample_base, sample_layers

DATA = kherson_sample.DATA_DIR


@pytest.fixture(scope="module")
def base() -> dict[Layer, LayerData]:
    return load_sample_base()


def test_every_layer_has_a_file_and_every_file_validates(base: dict[Layer, LayerData]) -> None:
    assert sample_layers() == list(CATALOGUE)
    assert {p.stem for p in DATA.glob("*.geojson")} == {layer.value for layer in CATALOGUE}
    assert all(base[layer].features for layer in CATALOGUE)


def test_the_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    kherson_sample.main(tmp_path)
    for layer in CATALOGUE:
        name = f"{layer.value}.geojson"
        assert (DATA / name).read_text(encoding="utf-8") == (tmp_path / name).read_text(encoding="utf-8"), (
            f"{name} differs from the generator's output: run python -m misto.cloud.geo.kherson_sample"
        )


def test_the_sample_is_small() -> None:
    assert sum(p.stat().st_size for p in DATA.glob("*.geojson")) < 300_000


def test_everything_is_marked_synthetic(base: dict[Layer, LayerData]) -> None:
    for layer, data in base.items():
        raw = json.loads((DATA / f"{layer.value}.geojson").read_text(encoding="utf-8"))
        assert "synthetic" in raw["name"]
        assert raw["description"].startswith("SYNTHETIC")
        assert data.name == raw["name"]
        assert all(f.properties.synthetic for f in data.features), layer


def test_the_sample_has_the_expected_contents(base: dict[Layer, LayerData]) -> None:
    counts = {layer: len(data.features) for layer, data in base.items()}
    assert 6 <= counts[Layer.DISTRICTS] <= 9
    assert counts[Layer.LAND_PARCELS] == 20
    assert 3 <= counts[Layer.MONUMENTS] <= 5
    assert counts[Layer.WATER_NETWORK] >= 5
    assert counts[Layer.GREEN_AREAS] >= 2
    for data in base.values():
        for feature in data.features:
            west, south, east, north = feature.shape.bounds
            assert 32.45 < west <= east < 32.75, feature.id
            assert 46.55 < south <= north < 46.72, feature.id


def test_the_districts_tile_the_city(base: dict[Layer, LayerData]) -> None:
    shapes = [f.shape for f in base[Layer.DISTRICTS].features]
    for a, b in itertools.combinations(shapes, 2):
        assert a.intersection(b).area < 1e-12
    city = unary_union(shapes)
    assert isinstance(city, Polygon)
    assert len(city.interiors) == 0
    assert city.area == pytest.approx(sum(s.area for s in shapes), rel=1e-9)
    assert city.area * 76_500 * 111_160 / 1e6 == pytest.approx(126, rel=0.1)  # km², about 14 x 9 km


def test_parcels_lie_in_one_district_and_buildings_in_their_parcel(base: dict[Layer, LayerData]) -> None:
    districts = base[Layer.DISTRICTS].features
    parcels = {f.id: f for f in base[Layer.LAND_PARCELS].features}
    for parcel in parcels.values():
        assert [d.id for d in districts if d.shape.contains(parcel.shape)] == ["district-7"]
    for building in base[Layer.BUILDINGS].features:
        assert isinstance(building.properties, BuildingProperties)
        assert building.properties.parcel_id is not None
        assert parcels[building.properties.parcel_id].shape.contains(building.shape)
    parcel_shapes = [p.shape for p in parcels.values()]
    for a, b in itertools.combinations(parcel_shapes, 2):
        assert not a.intersects(b)
