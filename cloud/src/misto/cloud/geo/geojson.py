"""GeoJSON import: parse a FeatureCollection for one layer into typed, validated features.

:func:`check_feature_collection` is the dry run: it never raises for bad input and returns every
problem at once, each naming its path (``features[3].geometry.coordinates[0]: ring not
closed``); :func:`load_feature_collection` raises :class:`GeoJSONError` with the same problems.
Nothing is repaired or dropped: a document with any problem imports nothing.

The checks, in order: valid UTF-8 JSON (no NaN/Infinity); a ``FeatureCollection`` object with a
``features`` array; the CRS (WGS 84 by default per RFC 7946, or a legacy ``crs`` member, or the
``source_crs`` argument; both must agree); for each feature: ``type`` = ``Feature``, a unique id
(the feature ``id`` or ``properties.id``), a geometry of a type the layer allows, well formed
(finite numeric positions, enough of them, closed rings), within WGS 84 bounds after reprojection
and valid per GEOS (no self-intersection: ``explain_validity``), and properties that match the
layer's schema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ValidationError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from misto.cloud.geo import crs as crs_mod
from misto.cloud.geo.errors import CrsError, GeoJSONError, Problem
from misto.cloud.geo.geometry import GeometryChecker, kind_of, show
from misto.cloud.geo.layers import FeatureProperties, GeometryType, Layer, spec

MAX_ID_LENGTH = 64
#: the longest collection ``name`` (stored by the registry); ``description`` has no limit
MAX_TEXT_LENGTH = {"name": 500}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, eq=False)
class Feature:
    """One validated feature of ``layer``: ``geometry`` is GeoJSON in WGS 84 (lon, lat[, height]);
    treat it as read-only. ``shape`` is the same geometry as a shapely object."""

    layer: Layer
    id: str
    geometry: Mapping[str, Any]
    properties: FeatureProperties

    @cached_property
    def shape(self) -> BaseGeometry:
        return shape(dict(self.geometry))

    @property
    def geometry_type(self) -> GeometryType:
        return GeometryType(self.geometry["type"])

    @property
    def wkt(self) -> str:
        return self.shape.wkt

    def to_geojson(self) -> dict[str, Any]:
        props = self.properties.model_dump(mode="json", exclude_none=True)
        if not props.get("extra"):
            props.pop("extra", None)
        return {"type": "Feature", "id": self.id, "geometry": self.geometry, "properties": props}


@dataclass(frozen=True, eq=False)
class LayerData:
    """A validated FeatureCollection of one layer, in WGS 84."""

    layer: Layer
    features: tuple[Feature, ...]
    name: str | None = None
    description: str | None = None
    source_crs: str = crs_mod.WGS84

    def to_geojson(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": "FeatureCollection"}
        if self.name is not None:
            doc["name"] = self.name
        if self.description is not None:
            doc["description"] = self.description
        doc["features"] = [f.to_geojson() for f in self.features]
        return doc


@dataclass(frozen=True, eq=False)
class ImportReport:
    """The result of a dry run: the features that passed and every problem found. The import
    as a whole is accepted only when ``problems`` is empty."""

    layer: Layer
    features: tuple[Feature, ...]
    problems: tuple[Problem, ...]
    name: str | None = None
    description: str | None = None
    source_crs: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def load_feature_collection(
    data: bytes | str | Mapping[str, Any],
    layer: Layer | str,
    *,
    source_crs: str | None = None,
    source: str | None = None,
) -> LayerData:
    """Parse and validate ``data`` as ``layer``; raise :class:`GeoJSONError` listing every problem."""
    report = check_feature_collection(data, layer, source_crs=source_crs)
    if report.problems or report.source_crs is None:
        raise GeoJSONError(report.problems, layer=report.layer.value, source=source)
    return LayerData(report.layer, report.features, report.name, report.description, report.source_crs)


def check_feature_collection(
    data: bytes | str | Mapping[str, Any] | object,
    layer: Layer | str,
    *,
    source_crs: str | None = None,
) -> ImportReport:
    """The dry run: validate ``data`` (JSON text or an already parsed object) as ``layer``."""
    layer_spec = spec(layer)
    checker = _Checker(layer_spec.layer)
    doc = checker.parse_json(data)
    if doc is None:
        return checker.report()
    if not isinstance(doc, Mapping):
        checker.add("$", f"expected a GeoJSON FeatureCollection object, got {kind_of(doc)}")
        return checker.report()
    if doc.get("type") != "FeatureCollection":
        checker.add("type", f'expected "FeatureCollection", got {show(doc.get("type"))}')
    checker.name = checker.optional_text(doc, "name", "name")
    checker.description = checker.optional_text(doc, "description", "description")
    checker.resolve_crs(doc.get("crs"), source_crs)
    features = doc.get("features")
    if not isinstance(features, list):
        checker.add("features", f"expected an array of features, got {kind_of(features)}")
        return checker.report()
    for i, item in enumerate(features):
        checker.feature(i, item)
    return checker.report()


@dataclass
class _Checker:
    layer: Layer
    problems: list[Problem] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    name: str | None = None
    description: str | None = None
    crs: crs_mod.CrsInfo | None = None
    crs_ok: bool = True
    seen_ids: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def report(self) -> ImportReport:
        used = None
        if self.crs_ok:
            used = self.crs.code if self.crs is not None else crs_mod.WGS84
        return ImportReport(self.layer, tuple(self.features), tuple(self.problems), self.name, self.description, used)

    # --- document level -----------------------------------------------------------------------

    def parse_json(self, data: object) -> object | None:
        if isinstance(data, bytes | bytearray):
            try:
                data = bytes(data).decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                self.add("$", f"not UTF-8: invalid byte at offset {exc.start}")
                return None
        if not isinstance(data, str):
            return data
        try:
            parsed: object = json.loads(data, parse_constant=_refuse_constant)
            return parsed
        except json.JSONDecodeError as exc:
            self.add("$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        except ValueError as exc:
            self.add("$", f"not valid JSON: {exc}")
        except RecursionError:
            self.add("$", "not valid JSON: nested too deeply")
        return None

    def optional_text(self, doc: Mapping[str, Any], key: str, path: str) -> str | None:
        value = doc.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, f"expected a string, got {kind_of(value)}")
        elif "\x00" in value:
            self.add(path, "must not contain NUL characters")
        elif len(value) > MAX_TEXT_LENGTH.get(key, len(value)):
            self.add(path, f"at most {MAX_TEXT_LENGTH[key]} characters")
        else:
            return value
        return None

    def resolve_crs(self, declared: object, explicit: str | None) -> None:
        declared_crs = None
        if declared is not None:
            declared_crs = self._declared_crs(declared)
            if declared_crs is None:
                self.crs_ok = False
        explicit_crs = None
        if explicit is not None:
            try:
                explicit_crs = crs_mod.resolve(explicit)
            except CrsError as exc:
                self.add("source_crs", exc.reason)
                self.crs_ok = False
        if (
            declared_crs
            and explicit_crs
            and declared_crs.code != explicit_crs.code
            and not (declared_crs.wgs84 and explicit_crs.wgs84)
        ):
            self.add("crs", f"declares {declared_crs.code} but source_crs is {explicit_crs.code}")
            self.crs_ok = False
        self.crs = explicit_crs or declared_crs

    def _declared_crs(self, declared: object) -> crs_mod.CrsInfo | None:
        if not isinstance(declared, Mapping):
            self.add("crs", f"expected a crs object, got {kind_of(declared)}")
            return None
        if declared.get("type") != "name":
            self.add("crs.type", f'only named CRS are supported ("name"), got {show(declared.get("type"))}')
            return None
        props = declared.get("properties")
        name = props.get("name") if isinstance(props, Mapping) else None
        if not isinstance(name, str):
            self.add("crs.properties.name", f"expected a CRS name such as EPSG:32636, got {kind_of(name)}")
            return None
        try:
            return crs_mod.resolve(name)
        except CrsError as exc:
            self.add("crs.properties.name", exc.reason)
            return None

    # --- one feature --------------------------------------------------------------------------

    def feature(self, i: int, item: object) -> None:
        path = f"features[{i}]"
        before = len(self.problems)
        if not isinstance(item, Mapping):
            self.add(path, f"expected a Feature object, got {kind_of(item)}")
            return
        if item.get("type") != "Feature":
            self.add(f"{path}.type", f'expected "Feature", got {show(item.get("type"))}')
        if "crs" in item:
            self.add(f"{path}.crs", "a crs per feature is not supported: declare it on the collection")
        raw_props = item.get("properties")
        if raw_props is None:
            raw_props = {}
        elif not isinstance(raw_props, Mapping):
            self.add(f"{path}.properties", f"expected an object or null, got {kind_of(raw_props)}")
            raw_props = None
        feature_id = self.feature_id(i, item, raw_props or {})
        geometry = self.geometry(f"{path}.geometry", item.get("geometry"), "geometry" in item)
        properties = self.properties(f"{path}.properties", raw_props) if raw_props is not None else None
        if len(self.problems) == before and feature_id and geometry and properties:
            self.features.append(Feature(self.layer, feature_id, geometry, properties))

    def feature_id(self, i: int, item: Mapping[str, Any], props: Mapping[str, Any]) -> str | None:
        path = f"features[{i}]"
        outer = self._id_value(f"{path}.id", item["id"]) if "id" in item else None
        inner = self._id_value(f"{path}.properties.id", props["id"]) if "id" in props else None
        if "id" not in item and "id" not in props:
            self.add(f"{path}.id", 'required: the feature "id" or properties.id')
            return None
        if outer is not None and inner is not None and outer != inner:
            self.add(f"{path}.properties.id", f"{inner!r} differs from the feature id {outer!r}")
            return None
        value = outer if outer is not None else inner
        if value is None:
            return None
        if value in self.seen_ids:
            self.add(f"{path}.id", f"duplicate id {value!r}, first used by features[{self.seen_ids[value]}]")
            return None
        self.seen_ids[value] = i
        return value

    def _id_value(self, path: str, value: object) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
            self.add(path, f"expected a non-empty string or integer of at most {MAX_ID_LENGTH} characters")
            return None
        if _CONTROL.search(value):
            self.add(path, f"{value!r} contains control characters")
            return None
        return value

    def properties(self, path: str, raw: Mapping[str, Any]) -> FeatureProperties | None:
        model = spec(self.layer).properties
        values = {k: v for k, v in raw.items() if k != "id"}
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                where = "".join(_segment(p) for p in error["loc"])
                self.add(f"{path}{where}", error["msg"])
            return None

    # --- geometry -----------------------------------------------------------------------------

    def geometry(self, path: str, raw: object, present: bool) -> dict[str, Any] | None:
        if raw is None:
            self.add(path, "required" if not present else "null geometry: this layer needs one")
            return None
        if not isinstance(raw, Mapping):
            self.add(path, f"expected a geometry object, got {kind_of(raw)}")
            return None
        allowed = spec(self.layer).geometry_types
        kind = raw.get("type")
        names = ", ".join(sorted(allowed))
        try:
            gtype = GeometryType(kind) if isinstance(kind, str) else None
        except ValueError:
            gtype = None
        if gtype is None:
            extra = " (GeometryCollection is not supported)" if kind == "GeometryCollection" else ""
            self.add(f"{path}.type", f"{show(kind)} is not a supported geometry type{extra}; layer allows {names}")
            return None
        if gtype not in allowed:
            self.add(f"{path}.type", f"{gtype} is not allowed in layer {self.layer}; it allows {names}")
            return None
        geo = GeometryChecker(path + ".coordinates", self.crs)
        coordinates = geo.check(gtype, raw.get("coordinates"))
        if coordinates is not None:
            result = {"type": gtype.value, "coordinates": coordinates}
            if self.crs_ok and geo.reproject():
                geo.validity(result, path)
        self.problems.extend(geo.summary())
        if geo.problems or coordinates is None or not self.crs_ok:
            return None
        return result


def _segment(key: str | int) -> str:
    """A path segment: ``[3]`` for an index, ``.name`` for a key, ``["odd key"]`` for other keys."""
    if isinstance(key, int):
        return f"[{key}]"
    return f".{key}" if _IDENTIFIER.match(key) else f"[{json.dumps(key)}]"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
