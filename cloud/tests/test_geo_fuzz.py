"""Hostile input: arbitrary JSON, arbitrary bytes and mutated sample features never crash the
importer; they are accepted, or refused with problems that each name a path."""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from misto.cloud.geo.errors import GeoJSONError
from misto.cloud.geo.geojson import ImportReport, check_feature_collection, load_feature_collection
from misto.cloud.geo.kherson_sample import GENERATORS
from misto.cloud.geo.layers import Layer

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEGMENT = r'(?:\.\w+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])'
PATH = re.compile(rf"^(?:\$|source_crs|type|name|description|features|crs{SEGMENT}*|features\[\d+\]{SEGMENT}*)$")
LAYERS = [Layer.DISTRICTS, Layer.STREETS, Layer.MONUMENTS, Layer.LAND_PARCELS, Layer.WATER_NETWORK]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
geojson_words = st.sampled_from(
    ["type", "features", "geometry", "properties", "coordinates", "id", "crs", "name", "Feature", "Polygon", "Point"]
)
geojson_like = st.recursive(
    scalars | geojson_words,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(geojson_words, inner, max_size=5),
    max_leaves=40,
)


def _assert_clean(report: ImportReport) -> None:
    for problem in report.problems:
        assert PATH.match(problem.path), problem
        assert problem.message
    if report.ok:
        for feature in report.features:
            assert feature.shape.is_valid
            west, south, east, north = feature.shape.bounds
            assert -180 <= west <= east <= 180
            assert -90 <= south <= north <= 90


def _check(data: Any, layer: Layer, source_crs: str | None = None) -> None:
    report = check_feature_collection(data, layer, source_crs=source_crs)
    _assert_clean(report)
    if report.ok:
        loaded = load_feature_collection(data, layer, source_crs=source_crs)
        assert [f.id for f in loaded.features] == [f.id for f in report.features]
    else:
        with pytest.raises(GeoJSONError) as refused:
            load_feature_collection(data, layer, source_crs=source_crs)
        assert refused.value.problems == report.problems


@FUZZ
@given(value=json_values, layer=st.sampled_from(LAYERS))
def test_arbitrary_json_values(value: Any, layer: Layer) -> None:
    _check(value, layer)
    text = json.dumps(value)  # NaN and Infinity become tokens that are not JSON
    _check(text, layer)
    _check(text.encode(), layer)


@FUZZ
@given(value=geojson_like, layer=st.sampled_from(LAYERS))
def test_arbitrary_geojson_shaped_values(value: Any, layer: Layer) -> None:
    _check({"type": "FeatureCollection", "features": [value, {"type": "Feature", "geometry": value}]}, layer)
    _check(value, layer)


@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(data, Layer.DISTRICTS)


@FUZZ
@given(text=st.text(max_size=60), layer=st.sampled_from(LAYERS))
def test_arbitrary_crs_names(text: str, layer: Layer) -> None:
    doc = {"type": "FeatureCollection", "features": GENERATORS[layer]()[:1]}
    _check({**doc, "crs": {"type": "name", "properties": {"name": text}}}, layer)
    _check(doc, layer, source_crs=text)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    if not path:
        return replacement
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "nudge" and isinstance(parent[last], int | float) and not isinstance(parent[last], bool):
        parent[last] = parent[last] + (replacement if isinstance(replacement, float) else 1e-4)
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    else:
        parent[last] = replacement
    return doc


@FUZZ
@given(
    layer=st.sampled_from(LAYERS),
    data=st.data(),
    source_crs=st.sampled_from([None, None, "EPSG:32636", "EPSG:6384"]),
)
def test_mutated_sample_features(layer: Layer, data: st.DataObject, source_crs: str | None) -> None:
    doc: Any = {"type": "FeatureCollection", "features": GENERATORS[layer]()[:3]}
    if source_crs is not None:  # sample coordinates read as metres: far off, but never a crash
        for feature in doc["features"]:
            feature["geometry"] = json.loads(
                json.dumps(feature["geometry"]).replace("32.", "50000").replace("46.", "516")
            )
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_paths(doc)), label="path")
        action = data.draw(st.sampled_from(["replace", "delete", "nudge", "duplicate"]), label="action")
        if action == "delete" and not path:
            continue
        replacement = data.draw(json_values | st.floats(min_value=-1, max_value=1), label="replacement")
        doc = _mutate(doc, path, action, replacement)
    _check(doc, layer, source_crs)


def test_the_unmutated_samples_pass_the_same_checks() -> None:
    for layer in LAYERS:
        report = check_feature_collection({"type": "FeatureCollection", "features": GENERATORS[layer]()}, layer)
        assert report.ok, report.problems
        _assert_clean(report)
        assert all(math.isfinite(c) for f in report.features for c in f.shape.bounds)
