"""The controlled vocabulary of metrics: every reading's ``metric`` is one of these names,
and its ``unit`` must be the metric's unit.

Names and units follow the FIWARE Smart Data Models where one exists (AirQualityObserved,
NoiseLevelObserved, TrafficFlowObserved, ParkingSpot/OffStreetParking, WasteContainer,
CrowdFlowObserved, Device). Ratios that FIWARE models as 0..1 numbers (relativeHumidity,
occupancy, fillingLevel, batteryLevel) are 0..1 here too, with unit ``1``.
``unit_code`` is the UN/CEFACT common code FIWARE uses in ``unitCode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SensorKind(StrEnum):
    AIR = "air"
    NOISE = "noise"
    TRAFFIC = "traffic"
    PARKING = "parking"
    WASTE = "waste"
    CAMERA = "camera"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    unit_code: str
    minimum: float
    maximum: float
    kinds: tuple[SensorKind, ...]
    description: str
    fiware: str

    def in_range(self, value: float) -> bool:
        return self.minimum <= value <= self.maximum


_A, _N, _T, _P, _W, _C, _D = (
    SensorKind.AIR,
    SensorKind.NOISE,
    SensorKind.TRAFFIC,
    SensorKind.PARKING,
    SensorKind.WASTE,
    SensorKind.CAMERA,
    SensorKind.DEVICE,
)

# fmt: off
_METRICS: tuple[Metric, ...] = (
    # Air quality (AirQualityObserved)
    Metric("pm25", "ug/m3", "GQ", 0, 1000, (_A,), "Particulate matter < 2.5 µm", "AirQualityObserved.pm25"),
    Metric("pm10", "ug/m3", "GQ", 0, 2000, (_A,), "Particulate matter < 10 µm", "AirQualityObserved.pm10"),
    Metric("no2", "ug/m3", "GQ", 0, 2000, (_A,), "Nitrogen dioxide", "AirQualityObserved.no2"),
    Metric("o3", "ug/m3", "GQ", 0, 1000, (_A,), "Ozone", "AirQualityObserved.o3"),
    Metric("so2", "ug/m3", "GQ", 0, 2000, (_A,), "Sulphur dioxide", "AirQualityObserved.so2"),
    Metric("co", "mg/m3", "GP", 0, 500, (_A,), "Carbon monoxide", "AirQualityObserved.co"),
    Metric("temperature", "Cel", "CEL", -60, 90, (_A, _W, _D), "Air or device temperature",
           "AirQualityObserved.temperature"),
    Metric("relativeHumidity", "1", "C62", 0, 1, (_A,), "Relative humidity as a 0..1 ratio",
           "AirQualityObserved.relativeHumidity"),
    Metric("atmosphericPressure", "hPa", "A97", 800, 1100, (_A,), "Atmospheric pressure",
           "WeatherObserved.atmosphericPressure"),
    # Noise (NoiseLevelObserved)
    Metric("LAeq", "dB(A)", "2N", 0, 150, (_N,), "A-weighted equivalent continuous sound level",
           "NoiseLevelObserved.LAeq"),
    Metric("LAmax", "dB(A)", "2N", 0, 160, (_N,), "A-weighted maximum sound level",
           "NoiseLevelObserved.LAmax"),
    # Traffic (TrafficFlowObserved)
    Metric("intensity", "1/h", "H74", 0, 20000, (_T,), "Vehicles counted, as an hourly rate",
           "TrafficFlowObserved.intensity"),
    Metric("averageVehicleSpeed", "km/h", "KMH", 0, 300, (_T,), "Mean speed of passing vehicles",
           "TrafficFlowObserved.averageVehicleSpeed"),
    Metric("occupancy", "1", "C62", 0, 1, (_T, _P), "Fraction of time or space occupied (0..1)",
           "TrafficFlowObserved.occupancy"),
    # Parking (ParkingSpot, OffStreetParking)
    Metric("occupied", "1", "C62", 0, 1, (_P,), "Parking bay state: 1 occupied, 0 free",
           "ParkingSpot.status"),
    Metric("availableSpotNumber", "1", "C62", 0, 100000, (_P,), "Free bays in a parking area",
           "OffStreetParking.availableSpotNumber"),
    # Waste (WasteContainer)
    Metric("fillingLevel", "1", "C62", 0, 1, (_W,), "Container filling level (0..1)",
           "WasteContainer.fillingLevel"),
    Metric("tilted", "1", "C62", 0, 1, (_W,), "Container tilted or knocked over: 1 yes, 0 no",
           "WasteContainer.status"),
    Metric("fireDetected", "1", "C62", 0, 1, (_W,), "Fire or heat alarm: 1 yes, 0 no",
           "WasteContainer.status"),
    # Camera counts (CrowdFlowObserved, TrafficFlowObserved)
    Metric("peopleCount", "1", "C62", 0, 100000, (_C,), "People counted in the observation period",
           "CrowdFlowObserved.peopleCount"),
    Metric("vehicleCount", "1", "C62", 0, 100000, (_C,), "Vehicles counted in the observation period",
           "TrafficFlowObserved.intensity"),
    # Device state (Device)
    Metric("batteryLevel", "1", "C62", 0, 1, (_D,), "Battery charge (0..1)", "Device.batteryLevel"),
    Metric("rssi", "dBm", "DBM", -150, 0, (_D,), "Received signal strength", "Device.rssi"),
)
# fmt: on

METRICS: dict[str, Metric] = {m.name: m for m in _METRICS}


def lookup(name: str) -> Metric:
    """The metric called ``name``; :class:`KeyError` with the known names if there is none."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}") from None


def check_reading(metric: str, unit: str, value: float) -> str | None:
    """Why a reading breaks the vocabulary, or ``None`` if it fits."""
    known = METRICS.get(metric)
    if known is None:
        return f"unknown metric {metric!r}"
    if unit != known.unit:
        return f"metric {metric!r} has unit {known.unit!r}, not {unit!r}"
    if not known.in_range(value):
        return f"{metric}={value} is outside the physical range [{known.minimum}, {known.maximum}]"
    return None
