"""The layer catalogue: each geospatial layer of the city registry, the geometry types it allows
and the schema of its features' properties, declared as data (:data:`CATALOGUE`).

Every properties model refuses unknown keys, so a misspelt attribute is reported rather than
dropped; attributes of the city's own data that have no column here go in ``extra``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator

Text = Annotated[str, Field(min_length=1, max_length=500)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
Count = Annotated[int, Strict(), Field(ge=0)]
Positive = Annotated[float, Strict(), Field(gt=0)]
Year = Annotated[int, Strict(), Field(ge=1000, le=2100)]
DiameterMm = Annotated[int, Strict(), Field(ge=10, le=4000)]
MAX_EXTRA_KEYS = 100


class Layer(StrEnum):
    DISTRICTS = "districts"
    STREETS = "streets"
    CARRIAGEWAYS = "carriageways"
    PAVEMENTS = "pavements"
    LAND_PARCELS = "land_parcels"
    BUILDINGS = "buildings"
    WATER_NETWORK = "water_network"
    SEWER_NETWORK = "sewer_network"
    HEATING_NETWORK = "heating_network"
    POWER_NETWORK = "power_network"
    TELECOM_NETWORK = "telecom_network"
    MONUMENTS = "monuments"
    GREEN_AREAS = "green_areas"
    NATURAL_RESOURCES = "natural_resources"


class GeometryType(StrEnum):
    POINT = "Point"
    MULTI_POINT = "MultiPoint"
    LINE_STRING = "LineString"
    MULTI_LINE_STRING = "MultiLineString"
    POLYGON = "Polygon"
    MULTI_POLYGON = "MultiPolygon"


class Visibility(StrEnum):
    """Who may see a layer by default: ``public`` layers go on the citizens' map and to partners;
    ``restricted`` ones (engineering networks: critical infrastructure) only to city staff."""

    PUBLIC = "public"
    RESTRICTED = "restricted"


# --- attribute vocabularies -------------------------------------------------------------------


class StreetClass(StrEnum):
    ARTERIAL = "arterial"
    COLLECTOR = "collector"
    LOCAL = "local"
    SERVICE = "service"
    PEDESTRIAN = "pedestrian"


class RoadSurface(StrEnum):
    ASPHALT = "asphalt"
    CONCRETE = "concrete"
    COBBLESTONE = "cobblestone"
    PAVING_STONES = "paving_stones"
    GRAVEL = "gravel"
    UNPAVED = "unpaved"


class Side(StrEnum):
    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"


class LandUse(StrEnum):
    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"
    INDUSTRIAL = "industrial"
    PUBLIC = "public"
    RECREATIONAL = "recreational"
    TRANSPORT = "transport"
    AGRICULTURAL = "agricultural"
    OTHER = "other"


class Ownership(StrEnum):
    STATE = "state"
    MUNICIPAL = "municipal"
    PRIVATE = "private"
    UNKNOWN = "unknown"


class BuildingUse(StrEnum):
    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"
    PUBLIC = "public"
    INDUSTRIAL = "industrial"
    RELIGIOUS = "religious"
    OTHER = "other"


class AssetStatus(StrEnum):
    IN_SERVICE = "in_service"
    OUT_OF_SERVICE = "out_of_service"
    PLANNED = "planned"
    ABANDONED = "abandoned"


class PipeMaterial(StrEnum):
    STEEL = "steel"
    CAST_IRON = "cast_iron"
    DUCTILE_IRON = "ductile_iron"
    PE = "pe"
    PVC = "pvc"
    CONCRETE = "concrete"
    ASBESTOS_CEMENT = "asbestos_cement"
    CERAMIC = "ceramic"
    OTHER = "other"


class WaterFunction(StrEnum):
    TRANSMISSION = "transmission"
    DISTRIBUTION = "distribution"
    SERVICE = "service"


class SewerSystem(StrEnum):
    SANITARY = "sanitary"
    STORM = "storm"
    COMBINED = "combined"


class HeatingMedium(StrEnum):
    HOT_WATER = "hot_water"
    STEAM = "steam"


class Placement(StrEnum):
    UNDERGROUND = "underground"
    OVERHEAD = "overhead"


class CableKind(StrEnum):
    FIBRE = "fibre"
    COPPER = "copper"
    COAXIAL = "coaxial"


class ProtectionLevel(StrEnum):
    NATIONAL = "national"
    LOCAL = "local"
    NEWLY_IDENTIFIED = "newly_identified"


class MonumentCategory(StrEnum):
    ARCHITECTURE = "architecture"
    HISTORY = "history"
    ARCHAEOLOGY = "archaeology"
    MONUMENTAL_ART = "monumental_art"
    URBAN_PLANNING = "urban_planning"
    SCIENCE_TECHNOLOGY = "science_technology"


class GreenAreaKind(StrEnum):
    PARK = "park"
    SQUARE = "square"
    BOULEVARD = "boulevard"
    GARDEN = "garden"
    FOREST_PARK = "forest_park"
    CEMETERY = "cemetery"
    OTHER = "other"


class ResourceKind(StrEnum):
    WATER_BODY = "water_body"
    RIVER = "river"
    WETLAND = "wetland"
    FOREST = "forest"
    PROTECTED_AREA = "protected_area"
    GROUNDWATER_WELL = "groundwater_well"
    MINERAL_DEPOSIT = "mineral_deposit"
    OTHER = "other"


# --- properties schemas -----------------------------------------------------------------------


class FeatureProperties(BaseModel):
    """Attributes every layer has. The feature's identifier is the GeoJSON feature ``id`` (or
    ``properties.id``), not a property here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Text | None = None
    synthetic: Annotated[bool, Strict()] = False
    source: Text | None = None
    notes: Annotated[str, Field(max_length=4000)] | None = None
    #: the city's own attributes that have no column here: flat string, number, boolean or null values
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _flat_scalars(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_EXTRA_KEYS:
            raise ValueError(f"at most {MAX_EXTRA_KEYS} keys, got {len(value)}")
        for key, item in value.items():
            if not 1 <= len(key) <= 100:
                raise ValueError(f"key {key[:20]!r}: expected 1 to 100 characters")
            ok = item is None or isinstance(item, bool | int) or (isinstance(item, str) and len(item) <= 2000)
            if not ok and not (isinstance(item, float) and math.isfinite(item)):
                raise ValueError(f"{key!r}: expected a string (up to 2000 characters), number, boolean or null")
        return value


class DistrictProperties(FeatureProperties):
    name: Text
    name_uk: Text | None = None
    code: Code | None = None
    population: Count | None = None


class StreetProperties(FeatureProperties):
    name: Text
    name_uk: Text | None = None
    street_class: StreetClass = StreetClass.LOCAL


class CarriagewayProperties(FeatureProperties):
    street_id: Code | None = None
    lanes: Annotated[int, Strict(), Field(ge=1, le=16)] | None = None
    surface: RoadSurface | None = None
    width_m: Annotated[float, Strict(), Field(gt=0, le=100)] | None = None


class PavementProperties(FeatureProperties):
    street_id: Code | None = None
    side: Side | None = None
    surface: RoadSurface | None = None
    width_m: Annotated[float, Strict(), Field(gt=0, le=50)] | None = None


class LandParcelProperties(FeatureProperties):
    #: Ukrainian cadastral number: KOATUU (10 digits) : zone : quarter : parcel
    cadastral_number: Annotated[str, Field(pattern=r"^\d{10}:\d{2}:\d{3}:\d{4}$")]
    land_use: LandUse
    ownership: Ownership = Ownership.UNKNOWN
    area_m2: Positive | None = None


class BuildingProperties(FeatureProperties):
    address: Text | None = None
    use: BuildingUse = BuildingUse.OTHER
    floors: Annotated[int, Strict(), Field(ge=1, le=200)] | None = None
    year_built: Year | None = None
    parcel_id: Code | None = None


class NetworkLineProperties(FeatureProperties):
    operator: Text | None = None
    status: AssetStatus = AssetStatus.IN_SERVICE
    installed_year: Year | None = None
    depth_m: Annotated[float, Strict(), Field(ge=0, le=100)] | None = None


class WaterLineProperties(NetworkLineProperties):
    function: WaterFunction = WaterFunction.DISTRIBUTION
    diameter_mm: DiameterMm | None = None
    material: PipeMaterial | None = None


class SewerLineProperties(NetworkLineProperties):
    system: SewerSystem = SewerSystem.SANITARY
    diameter_mm: DiameterMm | None = None
    material: PipeMaterial | None = None


class HeatingLineProperties(NetworkLineProperties):
    medium: HeatingMedium = HeatingMedium.HOT_WATER
    diameter_mm: DiameterMm | None = None
    material: PipeMaterial | None = None


class PowerLineProperties(NetworkLineProperties):
    voltage_kv: Annotated[float, Strict(), Field(gt=0, le=1200)]
    placement: Placement = Placement.UNDERGROUND


class TelecomLineProperties(NetworkLineProperties):
    cable: CableKind = CableKind.FIBRE
    placement: Placement = Placement.UNDERGROUND
    fibre_count: Annotated[int, Strict(), Field(ge=1, le=10000)] | None = None


class MonumentProperties(FeatureProperties):
    name: Text
    protection: ProtectionLevel
    category: MonumentCategory
    register_number: Code | None = None
    year: Annotated[int, Strict(), Field(ge=-5000, le=2100)] | None = None


class GreenAreaProperties(FeatureProperties):
    kind: GreenAreaKind


class NaturalResourceProperties(FeatureProperties):
    kind: ResourceKind
    protection_status: Text | None = None


# --- the catalogue ----------------------------------------------------------------------------

POINTS = frozenset({GeometryType.POINT, GeometryType.MULTI_POINT})
LINES = frozenset({GeometryType.LINE_STRING, GeometryType.MULTI_LINE_STRING})
POLYGONS = frozenset({GeometryType.POLYGON, GeometryType.MULTI_POLYGON})


@dataclass(frozen=True, slots=True)
class LayerSpec:
    layer: Layer
    title: str
    description: str
    geometry_types: frozenset[GeometryType]
    properties: type[FeatureProperties]
    visibility: Visibility = Visibility.PUBLIC

    @property
    def polygonal(self) -> bool:
        return self.geometry_types <= POLYGONS


_NET = Visibility.RESTRICTED

#: every layer, in the order the docs and the map list them
CATALOGUE: dict[Layer, LayerSpec] = {
    s.layer: s
    for s in [
        LayerSpec(Layer.DISTRICTS, "Districts", "Administrative districts", POLYGONS, DistrictProperties),
        LayerSpec(Layer.STREETS, "Streets", "Street centrelines with their names", LINES, StreetProperties),
        LayerSpec(Layer.CARRIAGEWAYS, "Carriageways", "Road surface areas", POLYGONS, CarriagewayProperties),
        LayerSpec(Layer.PAVEMENTS, "Pavements", "Footways, as areas or lines", POLYGONS | LINES, PavementProperties),
        LayerSpec(Layer.LAND_PARCELS, "Land parcels", "Cadastral land parcels", POLYGONS, LandParcelProperties),
        LayerSpec(Layer.BUILDINGS, "Buildings", "Buildings and structures (footprints)", POLYGONS, BuildingProperties),
        LayerSpec(Layer.WATER_NETWORK, "Water network", "Water supply pipes", LINES, WaterLineProperties, _NET),
        LayerSpec(Layer.SEWER_NETWORK, "Sewer network", "Sewer and storm drains", LINES, SewerLineProperties, _NET),
        LayerSpec(Layer.HEATING_NETWORK, "Heating network", "Heating pipes", LINES, HeatingLineProperties, _NET),
        LayerSpec(Layer.POWER_NETWORK, "Power network", "Power cables and lines", LINES, PowerLineProperties, _NET),
        LayerSpec(Layer.TELECOM_NETWORK, "Telecom network", "Telecom cables", LINES, TelecomLineProperties, _NET),
        LayerSpec(
            Layer.MONUMENTS,
            "Monuments",
            "Architectural and historical monuments (points or sites)",
            POINTS | POLYGONS,
            MonumentProperties,
        ),
        LayerSpec(Layer.GREEN_AREAS, "Green areas", "Parks, squares, boulevards", POLYGONS, GreenAreaProperties),
        LayerSpec(
            Layer.NATURAL_RESOURCES,
            "Natural resources",
            "Water bodies, rivers, forests, protected areas, wells",
            POINTS | LINES | POLYGONS,
            NaturalResourceProperties,
        ),
    ]
}


def spec(layer: Layer | str) -> LayerSpec:
    """The spec of ``layer``; a ``KeyError`` naming the known layers for an unknown one."""
    try:
        return CATALOGUE[Layer(layer)]
    except ValueError:
        known = ", ".join(CATALOGUE)
        raise KeyError(f"unknown layer {layer!r}; known layers: {known}") from None
