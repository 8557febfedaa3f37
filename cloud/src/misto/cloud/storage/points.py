"""Readings grouped into points: one point per device, instant and sensor kind.

The time-series schema (shared by the InfluxDB store and the dashboards): one measurement per
sensor kind (``air``, ``noise``, ``traffic``, ``parking``, ``waste``, ``camera``, ``device``),
tags ``device`` and ``gateway`` (``district`` once the registry knows where a device stands),
and the device's metrics at that instant as float fields named as in the vocabulary.

A metric that belongs to one kind only (``pm25``, ``LAeq``, ``fillingLevel``...) decides its kind.
A metric shared by several kinds (``temperature``: air, waste, device; ``occupancy``: traffic,
parking) joins a kind already decided by another metric of the same device and instant, else
its first kind. Device-state metrics (``batteryLevel``, ``rssi``) join the device's first decided
kind, else ``device``. So a waste bin's temperature lands in ``waste`` next to its fill level, and
a combined air-and-noise station writes one ``air`` and one ``noise`` point per instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from misto.cloud.storage.base import to_ms
from misto.protocol import Reading
from misto.protocol.vocabulary import METRICS, SensorKind

_KIND_ORDER = tuple(SensorKind)


@dataclass(slots=True)
class Point:
    """One device's metrics of one kind at one instant (``ts_ms``: milliseconds since the epoch)."""

    measurement: str
    device: str
    gateway: str
    ts_ms: int
    fields: dict[str, float] = field(default_factory=dict)


def kinds_for(metrics: Iterable[str]) -> dict[str, SensorKind]:
    """The kind (measurement) of each metric of one device at one instant, as the module doc says.
    Metrics not in the vocabulary are left out (the ingester dead-letters them before storage)."""
    known = [name for name in dict.fromkeys(metrics) if name in METRICS]
    chosen: dict[str, SensorKind] = {}
    for name in known:
        kinds = [k for k in METRICS[name].kinds if k is not SensorKind.DEVICE]
        if len(kinds) == 1:
            chosen[name] = kinds[0]
    decided = sorted(set(chosen.values()), key=_KIND_ORDER.index)
    for name in known:
        if name in chosen:
            continue
        kinds = [k for k in METRICS[name].kinds if k is not SensorKind.DEVICE]
        if not kinds:  # device-state metric
            chosen[name] = decided[0] if decided else SensorKind.DEVICE
            continue
        shared = [k for k in decided if k in kinds]
        chosen[name] = shared[0] if shared else kinds[0]
        if chosen[name] not in decided:
            decided.append(chosen[name])
            decided.sort(key=_KIND_ORDER.index)
    return chosen


def to_points(gateway: str, readings: Sequence[Reading]) -> list[Point]:
    """Group one message's readings into points, in the order their first reading appears.
    A metric repeated for the same device and instant keeps its last value (as InfluxDB would)."""
    by_instant: dict[tuple[str, int], list[Reading]] = {}
    for reading in readings:
        by_instant.setdefault((reading.device, to_ms(reading.ts)), []).append(reading)
    points: dict[tuple[str, str, int], Point] = {}
    for (device, ts_ms), group in by_instant.items():
        kinds = kinds_for(r.metric for r in group)
        for reading in group:
            kind = kinds.get(reading.metric)
            if kind is None:
                continue
            key = (kind.value, device, ts_ms)
            point = points.get(key)
            if point is None:
                point = points[key] = Point(kind.value, device, gateway, ts_ms)
            point.fields[reading.metric] = float(reading.value)
    return list(points.values())
