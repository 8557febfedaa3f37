"""Misto TC-1 traffic counter: an inductive-loop counter at a street-side cabinet, on an RS-485
bus (Modbus RTU), input registers (function 04).

The city's traffic: a quiet night (about 60 vehicles an hour on one lane), a morning rush at
8h and a longer evening rush around 17:30 (about 1,500 an hour), less at weekends. Speed falls
as the street fills (about 52 km/h free-flowing, 25 km/h in the rush); the loop's time
occupancy follows from flow and speed.
"""

from __future__ import annotations

from misto.sim.devices.model import DeviceModel, RegisterTable, RegisterType, SimRegister, SimText, Transport, WordOrder
from misto.sim.processes import TimeOccupancy
from misto.sim.signals import Bump, Daily, Daytime, Linear, Noise

INPUT = RegisterTable.INPUT

TC1 = DeviceModel(
    id="tc1",
    title="Misto TC-1 traffic counter",
    transport=Transport.RTU,
    registers=(
        SimRegister(
            metric="intensity",
            unit="1/h",
            table=INPUT,
            address=0,
            type=RegisterType.UINT16,
            signal=Daily(
                base=60.0,
                daytime=Daytime(rise=420.0, start=6.5, end=22.0, ramp=1.5),
                bumps=(
                    Bump(hour=8, height=950.0, width=1.1, weekend=0.35),
                    Bump(hour=17.5, height=1050.0, width=1.6, weekend=0.5),
                ),
                noise=Noise(sd=60.0, tau_s=300),
                floor=0.0,
                ceiling=4000.0,
            ),
        ),
        SimRegister(
            metric="averageVehicleSpeed",
            unit="km/h",
            table=INPUT,
            address=1,
            type=RegisterType.UINT16,
            scale=0.1,
            signal=Linear(
                of="intensity",
                reference=0.0,
                at_reference=52.0,
                slope=-0.018,
                noise=Noise(sd=2.5, tau_s=180),
                floor=5.0,
                ceiling=90.0,
            ),
        ),
        SimRegister(
            metric="occupancy",
            unit="1",
            table=INPUT,
            address=2,
            type=RegisterType.FLOAT32,
            word_order=WordOrder.LITTLE,
            signal=TimeOccupancy(
                flow="intensity", speed="averageVehicleSpeed", vehicle_length_m=6.5, floor=0.0, ceiling=1.0
            ),
        ),
    ),
    identity=(
        SimText(name="model", address=256, words=8, text="MISTO TC-1"),
        SimText(name="firmware", address=264, words=4, text="2.4.1"),
    ),
)
