"""One suite, both databases: the layers in the registry (import, listing, GeoJSON pages, spatial
queries, devices along a network line) on SQLite and on PostgreSQL + PostGIS, every spatial answer
checked against the in-memory shapely reference (:mod:`misto.cloud.geo.spatial`) on the Kherson
sample base."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from pyproj import Geod, Transformer

from misto.cloud.geo import spatial as reference
from misto.cloud.geo.errors import GeoJSONError
from misto.cloud.geo.geojson import Feature, LayerData
from misto.cloud.geo.layers import Layer, NaturalResourceProperties, ResourceKind, Visibility
from misto.cloud.geo.sample import load_sample_base
from misto.cloud.registry.errors import InvalidFieldError, NotFoundError
from misto.cloud.registry.layers import AUDIT_ENTITY, ImportMode, SqlLayers
from misto.cloud.registry.layers_spatial import PostgisFeatureSpatial
from misto.cloud.registry.migrations import upgrade
from misto.cloud.registry.models import DeviceCreate, DeviceModelCreate, GatewayCreate, Point
from misto.cloud.registry.models import Visibility as RecordVisibility
from misto.cloud.registry.spatial import Box
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.tables import POSTGIS_FEATURE_INDEX, POSTGIS_LOCATION_INDEX, audit_log
from misto.protocol.vocabulary import SensorKind

BACKENDS = ["sqlite", "postgis"]
ACTOR = "operator:olena"
CENTRE = (32.61, 46.64)
WGS84 = Geod(ellps="WGS84")
SAMPLE = load_sample_base()
EVERYTHING = [f for data in SAMPLE.values() for f in data.features]
#: distances may differ by this much between PostGIS geography and the projected reference
TOLERANCE_M = 0.01


@pytest.fixture(params=BACKENDS)
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRegistry]:
    url = (
        f"sqlite:///{tmp_path / 'registry.db'}" if request.param == "sqlite" else request.getfixturevalue("postgis").url
    )
    async with await SqlRegistry.open(url) as opened:
        yield opened


@pytest.fixture
async def layers(registry: SqlRegistry) -> SqlLayers:
    store = SqlLayers(registry)
    for data in SAMPLE.values():
        await store.import_layer(data, actor=ACTOR, source="kherson sample")
    return store


def features(layer: Layer) -> list[Feature]:
    return list(SAMPLE[layer].features)


def sample_doc(layer: Layer) -> dict[str, Any]:
    """A copy of the layer's GeoJSON to change (``to_geojson`` shares the features' geometry)."""
    copied: dict[str, Any] = json.loads(json.dumps(SAMPLE[layer].to_geojson()))
    return copied


def grid(west: float, south: float, east: float, north: float, n: int) -> list[tuple[float, float]]:
    return [
        (west + (east - west) * i / (n - 1), south + (north - south) * j / (n - 1)) for i in range(n) for j in range(n)
    ]


def vertices(layer: Layer) -> list[tuple[float, float]]:
    """Corners of the layer's polygons: points on borders, where the answers are most fragile."""
    found = []
    for feature in features(layer):
        if feature.geometry["type"] == "Polygon":
            found += [(p[0], p[1]) for p in feature.geometry["coordinates"][0][:-1]]
    return found


# --- import and reading -----------------------------------------------------------------------


async def test_the_sample_base_round_trips(layers: SqlLayers) -> None:
    for layer, data in SAMPLE.items():
        page = await layers.get_layer(layer, limit=1000)
        assert page.next_after is None
        stored = {f.id: f.to_geojson() for f in page.features}
        expected = {f["id"]: f for f in data.to_geojson()["features"]}
        assert stored == expected, layer
    listed = {s.spec.layer: s for s in await layers.list_layers()}
    assert list(listed) == list(Layer)
    assert {layer: s.feature_count for layer, s in listed.items()} == {
        layer: len(SAMPLE[layer].features) if layer in SAMPLE else 0 for layer in Layer
    }
    assert all(s.source == "kherson sample" and s.imported_at is not None for s in listed.values())


async def test_public_listing_leaves_out_restricted_layers(layers: SqlLayers) -> None:
    public = await layers.list_layers(public_only=True)
    assert Layer.WATER_NETWORK not in {s.spec.layer for s in public}
    assert all(s.spec.visibility is Visibility.PUBLIC for s in public)
    assert Layer.WATER_NETWORK in {s.spec.layer for s in await layers.list_layers()}


async def test_pages_and_bbox(layers: SqlLayers) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = await layers.get_layer(Layer.LAND_PARCELS, after=after, limit=6)
        seen += [f.id for f in page.features]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(f.id for f in features(Layer.LAND_PARCELS))
    box = (32.6140, 46.6460, 32.6160, 46.6470)
    page = await layers.get_layer(Layer.LAND_PARCELS, bbox=box)
    expected = reference.in_bbox(features(Layer.LAND_PARCELS), reference.BBox(*box))
    assert [f.id for f in page.features] == [f.id for f in expected]
    assert 0 < len(expected) < len(features(Layer.LAND_PARCELS))


async def test_dry_run_reports_every_bad_feature_and_writes_nothing(layers: SqlLayers) -> None:
    doc = sample_doc(Layer.DISTRICTS)
    doc["features"][1]["geometry"]["coordinates"][0][-1] = [0.0, 0.0]  # ring not closed
    doc["features"][4]["properties"]["population"] = "many"
    doc["features"][6]["id"] = doc["features"][0]["id"]
    report = await layers.import_geojson(json.dumps(doc), Layer.DISTRICTS, actor=ACTOR, dry_run=True)
    assert report.dry_run
    assert not report.ok
    paths = [p.path for p in report.problems]
    assert any(p.startswith("features[1].geometry") for p in paths)
    assert "features[4].properties.population" in paths
    assert "features[6].id" in paths
    assert report.feature_count == len(features(Layer.DISTRICTS))
    with pytest.raises(GeoJSONError) as refused:
        await layers.import_geojson(json.dumps(doc), Layer.DISTRICTS, actor=ACTOR)
    assert [p.path for p in refused.value.problems] == paths
    page = await layers.get_layer(Layer.DISTRICTS)
    assert [f.to_geojson() for f in page.features] == SAMPLE[Layer.DISTRICTS].to_geojson()["features"]


async def test_replace_and_upsert(layers: SqlLayers, registry: SqlRegistry) -> None:
    doc = sample_doc(Layer.MONUMENTS)
    changed = {**doc, "features": [doc["features"][0]]}
    changed["features"][0]["properties"]["name"] = "Renamed (synthetic)"
    done = await layers.import_geojson(changed, Layer.MONUMENTS, actor=ACTOR, mode=ImportMode.UPSERT)
    assert (done.written, done.removed, done.feature_count) == (1, 0, 4)
    page = await layers.get_layer(Layer.MONUMENTS)
    assert [f.properties["name"] for f in page.features if f.id == "monument-1"] == ["Renamed (synthetic)"]
    done = await layers.import_geojson(changed, Layer.MONUMENTS, actor=ACTOR, source="one.geojson")
    assert (done.written, done.removed, done.feature_count) == (1, 4, 1)
    assert [f.id for f in (await layers.get_layer(Layer.MONUMENTS)).features] == ["monument-1"]

    def entries(conn: sa.Connection) -> list[Any]:
        query = sa.select(audit_log).where(audit_log.c.entity == AUDIT_ENTITY, audit_log.c.entity_id == "monuments")
        return list(conn.execute(query.order_by(audit_log.c.seq)).all())

    found = await registry.transaction("read audit", entries)
    assert [(e.action, e.actor) for e in found] == [("create", ACTOR), ("update", ACTOR), ("update", ACTOR)]
    assert found[-1].after["feature_count"] == 1
    assert found[-1].after["source"] == "one.geojson"
    assert found[-1].before["feature_count"] == 4


async def test_an_import_in_another_crs_is_stored_in_wgs84(layers: SqlLayers) -> None:
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32636", always_xy=True)
    lon, lat = 32.6105, 46.6402
    x, y = to_utm.transform(lon, lat)
    doc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [x, y]},
                      "properties": {"name": "Well", "kind": "groundwater_well"}}],
    }  # fmt: skip
    await layers.import_geojson(doc, Layer.NATURAL_RESOURCES, actor=ACTOR, source_crs="EPSG:32636")
    (stored,) = (await layers.get_layer(Layer.NATURAL_RESOURCES)).features
    assert stored.id == "7"
    assert stored.geometry["coordinates"] == pytest.approx([lon, lat], abs=1e-9)


# --- spatial queries against the reference -------------------------------------------------------


@pytest.mark.parametrize("layer", [Layer.DISTRICTS, Layer.LAND_PARCELS, Layer.BUILDINGS])
async def test_containing_matches_shapely(layers: SqlLayers, layer: Layer) -> None:
    everything = features(layer)
    west, south = (min(f.shape.bounds[i] for f in everything) for i in (0, 1))
    east, north = (max(f.shape.bounds[i] for f in everything) for i in (2, 3))
    points = [*grid(west - 0.001, south - 0.001, east + 0.001, north + 0.001, 9), *vertices(layer), CENTRE]
    hits = 0
    for lon, lat in points:
        found = await layers.containing(layer, lon, lat)
        expected = reference.containing(everything, lon, lat)
        assert [f.id for f in found] == [f.id for f in expected], (lon, lat)
        hits += len(found)
    assert hits > len(points) / 4


async def test_the_centre_is_in_the_central_district(layers: SqlLayers) -> None:
    assert [f.id for f in await layers.containing(Layer.DISTRICTS, *CENTRE)] == ["district-7"]
    assert await layers.containing(Layer.DISTRICTS, 30.0, 45.0) == []
    assert await layers.containing(Layer.STREETS, *CENTRE) == []  # lines contain no area


@pytest.mark.parametrize(
    ("layer", "radius_m"),
    [
        (Layer.MONUMENTS, 500.0),
        (Layer.MONUMENTS, 2500.0),
        (Layer.WATER_NETWORK, 300.0),
        (Layer.BUILDINGS, 150.0),
        (Layer.LAND_PARCELS, 80.0),
        (Layer.DISTRICTS, 0.0),
    ],
)
async def test_within_matches_the_reference(layers: SqlLayers, layer: Layer, radius_m: float) -> None:
    for lon, lat in [CENTRE, (32.6160, 46.6480), (32.5800, 46.6300), (32.6400, 46.6600)]:
        found = await layers.within(layer, lon, lat, radius_m)
        expected = {n.feature.id: n.distance_m for n in reference.within_radius(features(layer), lon, lat, radius_m)}
        got = {n.feature.id: n.distance_m for n in found}
        sure = {i for i, d in expected.items() if radius_m - d > TOLERANCE_M}
        assert sure <= set(got) <= set(expected) | {i for i, d in got.items() if d - radius_m <= TOLERANCE_M}
        for feature_id, distance in got.items():
            if feature_id in expected:
                assert distance == pytest.approx(expected[feature_id], abs=TOLERANCE_M)
        assert [n.distance_m for n in found] == sorted(n.distance_m for n in found)


async def test_monuments_near_the_centre(layers: SqlLayers) -> None:
    found = await layers.within(Layer.MONUMENTS, *CENTRE, 500)
    assert len(found) == 2
    assert all(0 < n.distance_m <= 500 for n in found)


@pytest.mark.parametrize(
    "box",
    [
        (32.6140, 46.6460, 32.6210, 46.6510),
        (32.6140, 46.6460, 32.6160, 46.6470),
        (32.6000, 46.6300, 32.6200, 46.6500),
        (32.4, 46.5, 32.8, 46.8),
        (30.0, 45.0, 30.1, 45.1),
    ],
)
async def test_in_bbox_matches_shapely(layers: SqlLayers, box: tuple[float, float, float, float]) -> None:
    found = await layers.in_bbox(*box)
    expected = reference.in_bbox(EVERYTHING, reference.BBox(*box))
    assert sorted((f.layer, f.id) for f in found) == sorted((f.layer, f.id) for f in expected)
    only = await layers.in_bbox(*box, layers=[Layer.BUILDINGS, Layer.MONUMENTS])
    assert {f.layer for f in only} <= {Layer.BUILDINGS, Layer.MONUMENTS}
    assert len(only) == len([f for f in expected if f.layer in {Layer.BUILDINGS, Layer.MONUMENTS}])


# --- devices along a network line ------------------------------------------------------------------


async def _devices_near(registry: SqlRegistry, line: Feature) -> dict[str, tuple[float, float]]:
    """Devices placed at known distances on both sides of the line, some public, some private."""
    await registry.create_model(
        DeviceModelCreate(
            id="pm-1", kind=SensorKind.DEVICE, manufacturer="Misto", name="PM", metrics=("batteryLevel",)
        ),
        actor=ACTOR,
    )
    await registry.create_gateway(
        GatewayCreate(id="gw-1", name="G", organisation="Vodokanal", visibility=RecordVisibility.PUBLIC), actor=ACTOR
    )
    coords = line.geometry["coordinates"]
    placed: dict[str, tuple[float, float]] = {}
    for i, (lon, lat) in enumerate(coords):
        for j, (azimuth, distance) in enumerate([(0, 5.0), (180, 24.0), (90, 49.0), (270, 51.0), (45, 150.0)]):
            plon, plat, _ = WGS84.fwd(lon, lat, azimuth, distance)
            device_id = f"dev-{i}-{j}"
            visibility = RecordVisibility.PUBLIC if j % 2 == 0 else RecordVisibility.PRIVATE
            await registry.create_device(
                DeviceCreate(
                    id=device_id,
                    gateway_id="gw-1",
                    model_id="pm-1",
                    location=Point(lon=plon, lat=plat),
                    organisation="Vodokanal",
                    visibility=visibility,
                ),
                actor=ACTOR,
            )
            placed[device_id] = (plon, plat)
    return placed


def _as_features(placed: dict[str, tuple[float, float]]) -> list[Feature]:
    props = NaturalResourceProperties(kind=ResourceKind.GROUNDWATER_WELL)
    return [
        Feature(Layer.NATURAL_RESOURCES, i, {"type": "Point", "coordinates": [lon, lat]}, props)
        for i, (lon, lat) in placed.items()
    ]


@pytest.mark.parametrize("distance_m", [10.0, 50.0, 100.0])
async def test_devices_along_a_water_main_match_the_reference(
    layers: SqlLayers, registry: SqlRegistry, distance_m: float
) -> None:
    (main,) = [f for f in features(Layer.WATER_NETWORK) if f.id == "water-1"]
    placed = await _devices_near(registry, main)
    found = await registry.devices_along("water_network", "water-1", distance_m)
    expected = {n.feature.id: n.distance_m for n in reference.along_line(_as_features(placed), main, distance_m)}
    assert {n.device.id for n in found} == set(expected)
    assert 0 < len(expected) < len(placed)
    for nearby in found:
        assert nearby.distance_m == pytest.approx(expected[nearby.device.id], abs=TOLERANCE_M)
    assert [n.distance_m for n in found] == sorted(n.distance_m for n in found)
    public = await registry.devices_along("water_network", "water-1", distance_m, public_only=True)
    assert {n.device.id for n in public} == {n.device.id for n in found if n.device.visibility.value == "public"}


async def test_devices_along_refuses_what_is_not_a_line(layers: SqlLayers, registry: SqlRegistry) -> None:
    with pytest.raises(NotFoundError, match="water-99"):
        await registry.devices_along("water_network", "water-99", 10)
    with pytest.raises(InvalidFieldError, match="not a line"):
        await registry.devices_along("districts", "district-7", 10)
    with pytest.raises(InvalidFieldError, match="distance_m"):
        await registry.devices_along("water_network", "water-1", -1)


async def test_query_arguments_are_checked(layers: SqlLayers) -> None:
    with pytest.raises(InvalidFieldError, match="layer: unknown layer 'roads'"):
        await layers.containing("roads", *CENTRE)
    with pytest.raises(InvalidFieldError, match="lat"):
        await layers.containing(Layer.DISTRICTS, 32.6, 91.0)
    with pytest.raises(InvalidFieldError, match="radius_m"):
        await layers.within(Layer.MONUMENTS, *CENTRE, float("nan"))
    with pytest.raises(InvalidFieldError, match="west"):
        await layers.in_bbox(32.7, 46.6, 32.6, 46.7)
    with pytest.raises(InvalidFieldError, match="east"):
        await layers.in_bbox(32.6, 46.6, 32.6, 46.7)
    with pytest.raises(InvalidFieldError, match="limit"):
        await layers.get_layer(Layer.DISTRICTS, limit=0)


async def test_an_empty_layer_imports_and_clears(layers: SqlLayers) -> None:
    empty = LayerData(Layer.GREEN_AREAS, ())
    done = await layers.import_layer(empty, actor=ACTOR)
    assert (done.written, done.removed, done.feature_count) == (0, 2, 0)
    assert (await layers.get_layer(Layer.GREEN_AREAS)).features == ()


def test_postgis_layer_queries_use_the_gist_indexes(request: pytest.FixtureRequest) -> None:
    """The feature queries use the expression of the layers' GiST index, devices_along the devices' one."""

    engine = sa.create_engine(request.getfixturevalue("postgis").url)
    line = '{"type":"LineString","coordinates":[[32.6,46.6],[32.7,46.7]]}'
    row = SimpleNamespace(geometry=line, west=32.6, south=46.6, east=32.7, north=46.7)  # what along_query reads
    try:
        upgrade(engine)
        queries = [
            (PostgisFeatureSpatial.containing_query("districts", *CENTRE), POSTGIS_FEATURE_INDEX),
            (PostgisFeatureSpatial.within_query("monuments", *CENTRE, 500.0), POSTGIS_FEATURE_INDEX),
            (PostgisFeatureSpatial.box_query([], Box(32.6, 46.6, 32.7, 46.7)), POSTGIS_FEATURE_INDEX),
            (PostgisFeatureSpatial.along_query([], row, 50.0), POSTGIS_LOCATION_INDEX),  # type: ignore[arg-type]
        ]
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # empty tables: make the choice visible
            for query, index in queries:
                sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
                plan = "\n".join(r[0] for r in conn.execute(sa.text(f"EXPLAIN {sql}")))
                assert index in plan, plan
    finally:
        engine.dispose()


async def test_odd_text_round_trips_and_control_characters_in_ids_are_refused(layers: SqlLayers) -> None:
    doc: dict[str, Any] = {
        "type": "FeatureCollection",
        "name": "Криниці",
        "features": [
            {
                "type": "Feature",
                "id": "well-ʼ1",
                "geometry": {"type": "Point", "coordinates": [32.61, 46.64]},
                "properties": {"name": "nul\u0000 and ʼquotesʼ \"'", "kind": "groundwater_well"},
            }
        ],
    }
    await layers.import_geojson(doc, Layer.NATURAL_RESOURCES, actor=ACTOR)
    (stored,) = (await layers.get_layer(Layer.NATURAL_RESOURCES)).features
    assert (stored.id, stored.properties["name"]) == ("well-ʼ1", "nul\u0000 and ʼquotesʼ \"'")
    doc["features"][0]["id"] = "well\u00001"
    report = await layers.import_geojson(doc, Layer.NATURAL_RESOURCES, actor=ACTOR, dry_run=True)
    assert [p.path for p in report.problems] == ["features[0].id"]
