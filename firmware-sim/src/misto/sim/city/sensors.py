"""The readings of one city device at one poll: a simulator model's register values as the
gateway decodes them (:class:`~misto.sim.device.SimulatedDevice`), or a camera's counts.

A register row with a ``subdevice`` (bay 3 of parking controller ``pb1-0001``) is reported as
device ``pb1-0001.bay3``, as the edge agent does.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Protocol

from misto.protocol import Reading
from misto.sim.city.spec import CAMERA, DevicePlan
from misto.sim.device import SimulatedDevice
from misto.sim.devices import MODELS
from misto.sim.signals import Bump, Daily, Daytime, Noise, Signal, SignalSet

#: People passing a camera per hour: quiet nights, a lunchtime and an evening crowd.
PEOPLE_PER_HOUR = Daily(
    base=15.0,
    daytime=Daytime(rise=260.0, start=7.5, end=21.5, ramp=1.5),
    bumps=(
        Bump(hour=8.5, height=180.0, width=1.0, weekend=0.4),
        Bump(hour=13.0, height=140.0, width=1.2, weekend=1.3),
        Bump(hour=18.0, height=240.0, width=1.5, weekend=1.2),
    ),
    noise=Noise(sd=30.0, tau_s=300),
    floor=0.0,
    ceiling=5000.0,
)
#: Vehicles passing a camera per hour (a smaller street than the traffic counters').
VEHICLES_PER_HOUR = Daily(
    base=30.0,
    daytime=Daytime(rise=250.0, start=6.5, end=22.0, ramp=1.5),
    bumps=(Bump(hour=8, height=420.0, width=1.1, weekend=0.35), Bump(hour=17.5, height=480.0, width=1.6)),
    noise=Noise(sd=35.0, tau_s=300),
    floor=0.0,
    ceiling=4000.0,
)
_CAMERA_SIGNALS: tuple[tuple[str, Signal], ...] = (
    ("peopleCount", PEOPLE_PER_HOUR),
    ("vehicleCount", VEHICLES_PER_HOUR),
)


class Sensor(Protocol):
    def read(self, at: datetime) -> list[Reading]: ...


class ModelSensor:
    """A simulator model's device, read as a correct register decoder reads it."""

    def __init__(self, plan: DevicePlan, seed: int) -> None:
        model = MODELS[plan.model]
        self._device = SimulatedDevice(model, seed=seed, key=plan.id)
        self._id = plan.id
        self._rows = [
            (reg.key, f"{plan.id}.{reg.subdevice}" if reg.subdevice else plan.id, reg.metric, reg.unit)
            for reg in model.registers
        ]

    def read(self, at: datetime) -> list[Reading]:
        values = self._device.update(at).values
        return [Reading(device, metric, values[key], unit, at) for key, device, metric, unit in self._rows]


class CameraSensor:
    """A street camera's counts in one observation period (the poll interval): the edge counts
    frames itself (``misto.edge.drivers.camera``); here the counts come from daily rates."""

    def __init__(self, plan: DevicePlan, seed: int, period_s: float) -> None:
        key = plan.id
        self._signals = SignalSet(
            _CAMERA_SIGNALS,
            lambda name: random.Random(f"{seed}/{key}/{name}"),  # noqa: S311 - simulated noise
        )
        self._id = plan.id
        self._hours = period_s / 3600.0

    def read(self, at: datetime) -> list[Reading]:
        rates = self._signals.sample(at)
        return [Reading(self._id, metric, float(round(rate * self._hours)), "1", at) for metric, rate in rates.items()]


def sensor_for(plan: DevicePlan, *, seed: int, period_s: float) -> Sensor:
    if plan.model == CAMERA:
        return CameraSensor(plan, seed, period_s)
    return ModelSensor(plan, seed)
