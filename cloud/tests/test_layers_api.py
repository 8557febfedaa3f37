"""The layers' HTTP API over a real SQLite registry holding the Kherson sample base: GeoJSON
answers, public versus restricted layers per role, imports with their dry run and the list of
problems, and bad parameters answered 422 (never 500)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cloud.tests.test_api import AUTH, TOKEN, client_for
from misto.cloud.api import create_app
from misto.cloud.api.access import identify
from misto.cloud.api.routes import layers as layer_routes
from misto.cloud.auth.roles import Principal, Role
from misto.cloud.geo.layers import Layer
from misto.cloud.geo.sample import load_sample_base
from misto.cloud.registry.layers import SqlLayers
from misto.cloud.registry.models import DeviceCreate, DeviceModelCreate, GatewayCreate, Point, Visibility
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import load_settings
from misto.protocol.vocabulary import SensorKind

GEOJSON = "application/geo+json"
CENTRE: dict[str, Any] = {"lon": 32.61, "lat": 46.64}
SAMPLE = load_sample_base()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = load_settings(
        overrides={"api": {"operator_token": TOKEN}, "store": {"path": str(tmp_path / "misto.db")}}
    )
    made = create_app(settings)
    async with made.router.lifespan_context(made):
        registry = made.state.misto.registry
        assert isinstance(registry, SqlRegistry)
        store = SqlLayers(registry)
        for data in SAMPLE.values():
            await store.import_layer(data, actor="test", source="kherson sample")
        await registry.create_model(
            DeviceModelCreate(id="aq1", kind=SensorKind.AIR, manufacturer="A", name="AQ", metrics=("pm25",)),
            actor="test",
        )
        await registry.create_gateway(
            GatewayCreate(id="gw-1", name="G", organisation="City", visibility=Visibility.PUBLIC), actor="test"
        )
        for device_id, visibility in (("aq-public", Visibility.PUBLIC), ("aq-private", Visibility.PRIVATE)):
            await registry.create_device(
                DeviceCreate(
                    id=device_id,
                    gateway_id="gw-1",
                    model_id="aq1",
                    location=Point(lon=32.6101, lat=46.6401),
                    organisation="City",
                    owner_contact="ops@city",
                    visibility=visibility,
                ),
                actor="test",
            )
        yield made


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
def as_role(app: FastAPI) -> Callable[[Role], None]:
    """Make every request come from a person of ``role`` (as the auth module will authenticate them)."""

    def become(role: Role) -> None:
        app.dependency_overrides[identify] = lambda: Principal(f"user:{role.value}", role)

    return become


def collection(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == GEOJSON
    doc: dict[str, Any] = response.json()
    assert doc["type"] == "FeatureCollection"
    return doc


def ids(doc: dict[str, Any]) -> list[str]:
    return [f["id"] for f in doc["features"]]


def error_locations(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in response.json()["detail"]]


async def test_the_catalogue_with_counts(api: httpx.AsyncClient) -> None:
    public = (await api.get("/api/v1/layers")).json()["layers"]
    assert {entry["layer"] for entry in public} == {
        layer.value for layer in Layer if not layer.value.endswith("_network")
    }
    districts = next(entry for entry in public if entry["layer"] == "districts")
    assert districts["feature_count"] == 8
    assert districts["visibility"] == "public"
    staff = (await api.get("/api/v1/layers", headers=AUTH)).json()["layers"]
    assert len(staff) == len(Layer)
    assert next(e for e in staff if e["layer"] == "water_network")["feature_count"] == 6


async def test_a_public_layer_is_geojson_for_anyone(api: httpx.AsyncClient) -> None:
    doc = collection(await api.get("/api/v1/layers/districts"))
    assert ids(doc) == [f"district-{n}" for n in range(1, 9)]
    assert doc["features"][0] == SAMPLE[Layer.DISTRICTS].to_geojson()["features"][0]
    page = collection(await api.get("/api/v1/layers/land_parcels", params={"limit": 5}))
    assert len(page["features"]) == 5
    assert page["next_after"] == "parcel-05"
    box = {"west": 32.6140, "south": 46.6460, "east": 32.6160, "north": 46.6470}
    assert 0 < len(collection(await api.get("/api/v1/layers/land_parcels", params=box))["features"]) < 20
    assert (await api.get("/api/v1/layers/roads")).status_code == 404


@pytest.mark.parametrize(
    ("role", "expected"),
    [(None, 401), (Role.CITIZEN, 403), (Role.PARTNER, 403), (Role.TECHNICIAN, 200), (Role.OPERATOR, 200)],
)
async def test_restricted_layers_need_staff(
    api: httpx.AsyncClient, as_role: Callable[[Role], None], role: Role | None, expected: int
) -> None:
    if role is not None:
        as_role(role)
    queries: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/layers/water_network", {}),
        ("/api/v1/geo/within", {**CENTRE, "radius_m": 500, "layer": "water_network"}),
        ("/api/v1/geo/along", {"layer": "water_network", "feature": "water-1", "distance_m": 50}),
        ("/api/v1/geo/bbox", {"west": 32.6, "south": 46.6, "east": 32.7, "north": 46.7, "layers": "water_network"}),
    ]
    for path, params in queries:
        response = await api.get(path, params=params)
        assert response.status_code == expected, (path, response.text)
    listed = (await api.get("/api/v1/layers")).json()["layers"]
    assert ("water_network" in {e["layer"] for e in listed}) is (expected == 200)


async def test_the_admin_token_sees_restricted_layers(api: httpx.AsyncClient) -> None:
    assert len(collection(await api.get("/api/v1/layers/water_network", headers=AUTH))["features"]) == 6


async def test_contains_and_within(api: httpx.AsyncClient) -> None:
    doc = collection(await api.get("/api/v1/geo/contains", params={**CENTRE, "layer": "districts"}))
    assert ids(doc) == ["district-7"]
    assert doc["features"][0]["properties"]["layer"] == "districts"
    near = collection(await api.get("/api/v1/geo/within", params={**CENTRE, "radius_m": 500, "layer": "monuments"}))
    distances = [f["properties"]["distance_m"] for f in near["features"]]
    assert len(distances) == 2
    assert distances == sorted(distances)
    assert max(distances) <= 500


async def test_devices_for_the_public_are_the_public_ones_in_public_view(api: httpx.AsyncClient) -> None:
    params: dict[str, Any] = {**CENTRE, "radius_m": 100, "layer": "devices"}
    public = collection(await api.get("/api/v1/geo/within", params=params))
    assert ids(public) == ["aq-public"]
    assert "owner_contact" not in public["features"][0]["properties"]
    assert public["features"][0]["geometry"]["type"] == "Point"
    staff = collection(await api.get("/api/v1/geo/within", params=params, headers=AUTH))
    assert sorted(ids(staff)) == ["aq-private", "aq-public"]
    assert staff["features"][0]["properties"]["owner_contact"] == "ops@city"
    box = {"west": 32.60, "south": 46.63, "east": 32.62, "north": 46.65}
    everything = collection(await api.get("/api/v1/geo/bbox", params=box))
    assert "aq-private" not in ids(everything)
    assert "aq-public" in ids(everything)
    assert not {f["properties"]["layer"] for f in everything["features"]} & {"water_network", "sewer_network"}
    assert "district-7" in ids(everything)
    assert "aq-private" in ids(collection(await api.get("/api/v1/geo/bbox", params=box, headers=AUTH)))
    text = json.dumps(everything)
    assert "ops@city" not in text


async def test_devices_along_a_water_main(api: httpx.AsyncClient, app: FastAPI) -> None:
    registry: SqlRegistry = app.state.misto.registry
    (main,) = [f for f in SAMPLE[Layer.WATER_NETWORK].features if f.id == "water-1"]
    lon, lat = main.geometry["coordinates"][0]
    await registry.create_device(
        DeviceCreate(
            id="pm-on-main", gateway_id="gw-1", model_id="aq1", location=Point(lon=lon, lat=lat), organisation="City"
        ),
        actor="test",
    )
    params: dict[str, Any] = {"layer": "water_network", "feature": "water-1", "distance_m": 20}
    doc = collection(await api.get("/api/v1/geo/along", params=params, headers=AUTH))
    assert ids(doc) == ["pm-on-main"]
    assert doc["features"][0]["properties"]["distance_m"] == pytest.approx(0, abs=0.01)
    missing = await api.get("/api/v1/geo/along", params={**params, "feature": "water-99"}, headers=AUTH)
    assert missing.status_code == 404
    polygon = await api.get("/api/v1/geo/along", params={**params, "layer": "districts", "feature": "district-7"})
    assert error_locations(polygon) == [["query", "feature"]]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/geo/contains", {"lon": 32.6, "lat": 91, "layer": "districts"}, "lat"),
        ("/api/v1/geo/contains", {"lon": "nan", "lat": 46.6, "layer": "districts"}, "lon"),
        ("/api/v1/geo/contains", {"lon": "east", "lat": 46.6, "layer": "districts"}, "lon"),
        ("/api/v1/geo/contains", {"lon": 32.6, "lat": 46.6}, "layer"),
        ("/api/v1/geo/contains", {"lon": 32.6, "lat": 46.6, "layer": "roads"}, "layer"),
        ("/api/v1/geo/within", {"lon": 32.6, "lat": 46.6, "radius_m": -1, "layer": "monuments"}, "radius_m"),
        ("/api/v1/geo/within", {"lon": 32.6, "lat": 46.6, "radius_m": "inf", "layer": "devices"}, "radius_m"),
        ("/api/v1/geo/bbox", {"west": 32.7, "south": 46.6, "east": 32.6, "north": 46.7}, "west"),
        ("/api/v1/geo/bbox", {"west": 32.6, "south": 46.6, "east": 32.6, "north": 46.7}, "east"),
        ("/api/v1/geo/bbox", {"west": 32.6, "south": 46.6, "east": 32.7, "north": 46.7, "layers": "x"}, "layers"),
        ("/api/v1/layers/districts", {"west": 32.6}, "west"),
        ("/api/v1/layers/districts", {"limit": 0}, "limit"),
    ],
)
async def test_bad_parameters_are_422_naming_them(
    api: httpx.AsyncClient, path: str, params: dict[str, Any], field: str
) -> None:
    locations = error_locations(await api.get(path, params=params))
    assert ["query", field] in locations


# --- import -----------------------------------------------------------------------------------------


def monuments(**change: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(SAMPLE[Layer.MONUMENTS].to_geojson()))
    doc.update(change)
    return doc


async def test_import_needs_an_operator(api: httpx.AsyncClient, as_role: Callable[[Role], None]) -> None:
    body = json.dumps(monuments())
    assert (await api.put("/api/v1/layers/monuments", content=body)).status_code == 401
    as_role(Role.TECHNICIAN)
    assert (await api.put("/api/v1/layers/monuments", content=body)).status_code == 403
    as_role(Role.OPERATOR)
    done = await api.put("/api/v1/layers/monuments", content=body)
    assert done.status_code == 200, done.text
    assert done.json()["written"] == 4


async def test_dry_run_lists_every_bad_feature_and_import_refuses_them(api: httpx.AsyncClient) -> None:
    doc = monuments()
    doc["features"][1]["geometry"]["coordinates"] = [32.6, 95.0]
    doc["features"][3]["properties"]["protection"] = "galactic"
    doc["features"].append({"type": "Feature", "id": "x", "geometry": None, "properties": {}})
    body = json.dumps(doc)
    dry = await api.put("/api/v1/layers/monuments", content=body, params={"dry_run": "true"}, headers=AUTH)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["dry_run"] is True
    assert report["ok"] is False
    assert report["valid_features"] == 2
    assert report["feature_count"] == 4
    paths = [p["path"] for p in report["problems"]]
    assert sorted({p.split(".")[0] for p in paths}) == ["features[1]", "features[3]", "features[4]"]
    assert "features[4].geometry" in paths
    assert "features[3].properties.protection" in paths
    refused = await api.put("/api/v1/layers/monuments", content=body, headers=AUTH)
    assert [loc[1] for loc in error_locations(refused)] == paths
    unchanged = collection(await api.get("/api/v1/layers/monuments"))
    assert len(unchanged["features"]) == 4


async def test_import_modes_and_reprojection(api: httpx.AsyncClient) -> None:
    one = monuments()
    one["features"] = one["features"][:1]
    upsert = await api.put("/api/v1/layers/monuments", json=one, params={"mode": "upsert"}, headers=AUTH)
    assert (upsert.json()["written"], upsert.json()["feature_count"]) == (1, 4)
    replaced = await api.put("/api/v1/layers/monuments", json=one, params={"source": "one.geojson"}, headers=AUTH)
    assert (replaced.json()["removed"], replaced.json()["feature_count"]) == (4, 1)
    listed = (await api.get("/api/v1/layers")).json()["layers"]
    assert next(e for e in listed if e["layer"] == "monuments")["source"] == "one.geojson"
    bad_crs = await api.put("/api/v1/layers/monuments", json=one, params={"source_crs": "EPSG:0"}, headers=AUTH)
    assert error_locations(bad_crs) == [["body", "source_crs"]]


async def test_garbage_and_oversized_bodies(api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for body in (b"", b"{", b"\xff\xfe", b"[]", b'{"type": "FeatureCollection"}', b"NaN"):
        response = await api.put("/api/v1/layers/districts", content=body, headers=AUTH)
        assert response.status_code == 422, (body, response.text)
    bad_mode = await api.put("/api/v1/layers/districts", content=b"{}", params={"mode": "merge"}, headers=AUTH)
    assert ["query", "mode"] in error_locations(bad_mode)
    monkeypatch.setattr(layer_routes, "MAX_IMPORT_BYTES", 100)
    big = json.dumps(monuments())
    assert (await api.put("/api/v1/layers/monuments", content=big, headers=AUTH)).status_code == 413
    assert (await api.put("/api/v1/layers/roads", content=b"{}", headers=AUTH)).status_code == 404
