"""The layer catalogue, and docs/geospatial.md kept in step with it: the generated attribute
reference is current and the dry-run example runs."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from misto.cloud.geo import reference
from misto.cloud.geo.layers import CATALOGUE, LINES, POLYGONS, FeatureProperties, Layer, Visibility, spec

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "geospatial.md"

ISSUE_LAYERS = {
    "districts",
    "streets",
    "carriageways",
    "pavements",
    "land_parcels",
    "buildings",
    "water_network",
    "sewer_network",
    "heating_network",
    "power_network",
    "telecom_network",
    "monuments",
    "green_areas",
    "natural_resources",
}


def test_the_catalogue_has_every_layer_of_the_issue() -> None:
    assert {layer.value for layer in CATALOGUE} == ISSUE_LAYERS
    assert list(CATALOGUE) == list(Layer)
    for layer, layer_spec in CATALOGUE.items():
        assert layer_spec.layer is layer
        assert layer_spec.geometry_types
        assert issubclass(layer_spec.properties, FeatureProperties)


def test_engineering_networks_are_lines_and_restricted() -> None:
    networks = [layer for layer in Layer if layer.value.endswith("_network")]
    assert len(networks) == 5
    for layer in networks:
        assert CATALOGUE[layer].geometry_types == LINES
        assert CATALOGUE[layer].visibility is Visibility.RESTRICTED
    assert CATALOGUE[Layer.DISTRICTS].geometry_types == POLYGONS
    assert CATALOGUE[Layer.DISTRICTS].polygonal
    assert not CATALOGUE[Layer.MONUMENTS].polygonal


@pytest.mark.parametrize("layer", list(Layer))
def test_every_schema_refuses_unknown_keys(layer: Layer) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        CATALOGUE[layer].properties.model_validate({"no_such_attribute": 1})


def test_spec_names_the_known_layers_for_an_unknown_one() -> None:
    assert spec("monuments").layer is Layer.MONUMENTS
    with pytest.raises(KeyError, match="known layers: districts, streets"):
        spec("roads")


def test_the_docs_reference_is_generated_from_the_catalogue() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert reference.markdown() in text, "docs/geospatial.md is stale: paste `python -m misto.cloud.geo.reference`"
    for layer in Layer:
        assert f"`{layer.value}`" in text.split("## Layers", 1)[1].split("## Validation", 1)[0]


def test_the_docs_dry_run_example_runs() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: dry run -->\n```python\n(.*?)```", text, flags=re.DOTALL)
    assert match, "the dry-run example is missing from docs/geospatial.md"
    out = io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(out):
        exec(compile(match.group(1), str(DOC), "exec"), {})
    assert out.getvalue() == "8 features valid, 0 problems\n"
