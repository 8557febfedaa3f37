"""Misto WB-1 waste bin sensor: an ultrasonic fill-level sensor with a thermometer and a tilt
switch, on an RS-485 bus (Modbus RTU), input registers (function 04). Its alarms are bit fields
of a status register: bit 0 tilted, bit 1 fire (heat) detected.

A bin on a busy street fills with the life of the street (little at night) and is emptied on
Monday, Wednesday and Friday at 6:30; over a weekend it overflows. Now and then it is knocked
over until someone rights it; very rarely something in it burns, and its temperature jumps.
"""

from __future__ import annotations

from misto.sim.devices.model import DeviceModel, RegisterTable, RegisterType, SimRegister, SimText, Transport
from misto.sim.processes import Events, FillCycle, Heated
from misto.sim.signals import Daily, Daytime, Drift, Noise, Season, Wave

INPUT = RegisterTable.INPUT

WB1 = DeviceModel(
    id="wb1",
    title="Misto WB-1 waste bin sensor",
    transport=Transport.RTU,
    registers=(
        SimRegister(
            metric="fillingLevel",
            unit="1",
            table=INPUT,
            address=0,
            type=RegisterType.UINT16,
            scale=0.001,
            signal=FillCycle(
                per_day=0.42,
                activity=Daily(base=0.25, daytime=Daytime(rise=1.4, start=7.0, end=21.0, ramp=1.5), floor=0, ceiling=5),
            ),
        ),
        SimRegister(
            metric="temperature",
            unit="Cel",
            table=INPUT,
            address=1,
            type=RegisterType.INT16,
            scale=0.1,
            signal=Heated(
                of="fireDetected",
                base=Daily(
                    base=12.0,
                    season=Season(amplitude=12.0, peak_day=200),
                    waves=(Wave(amplitude=6.0, peak_hour=15),),
                    noise=Noise(sd=0.3, tau_s=1800),
                    floor=-40.0,
                    ceiling=85.0,
                ),
                rise=45.0,
                floor=-40.0,
                ceiling=85.0,
            ),
        ),
        SimRegister(
            metric="tilted",
            unit="1",
            table=INPUT,
            address=2,
            type=RegisterType.BIT,
            bit=0,
            signal=Events(per_day=0.15, min_minutes=15, max_minutes=180),
        ),
        SimRegister(
            metric="fireDetected",
            unit="1",
            table=INPUT,
            address=2,
            type=RegisterType.BIT,
            bit=1,
            signal=Events(per_day=0.01, min_minutes=10, max_minutes=40),
        ),
        SimRegister(
            metric="batteryLevel",
            unit="1",
            table=INPUT,
            address=3,
            type=RegisterType.UINT16,
            scale=0.01,
            signal=Daily(base=0.8, drifts=(Drift(amplitude=0.12, period_hours=24 * 45),), floor=0.0, ceiling=1.0),
        ),
    ),
    identity=(
        SimText(name="model", address=256, words=8, text="MISTO WB-1"),
        SimText(name="firmware", address=264, words=4, text="3.0.2"),
    ),
)
