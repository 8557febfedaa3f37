"""The synthetic Kherson sample base shipped with misto-cloud (``data/kherson/*.geojson``), loaded
through the same validating importer as any city's data."""

from __future__ import annotations

from importlib import resources

from misto.cloud.geo.geojson import LayerData, load_feature_collection
from misto.cloud.geo.layers import Layer

SAMPLE = "kherson"


def sample_layers() -> list[Layer]:
    """The layers the sample base has a file for, in catalogue order."""
    folder = resources.files("misto.cloud.geo").joinpath("data", SAMPLE)
    present = {entry.name.removesuffix(".geojson") for entry in folder.iterdir() if entry.name.endswith(".geojson")}
    return [layer for layer in Layer if layer.value in present]


def load_sample_layer(layer: Layer) -> LayerData:
    """One layer of the sample base, validated (a :class:`GeoJSONError` would be a bug here)."""
    resource = resources.files("misto.cloud.geo").joinpath("data", SAMPLE, f"{layer.value}.geojson")
    return load_feature_collection(resource.read_bytes(), layer, source=f"{SAMPLE}/{layer.value}.geojson")


def load_sample_base() -> dict[Layer, LayerData]:
    """Every layer of the sample base."""
    return {layer: load_sample_layer(layer) for layer in sample_layers()}
