"""Misto NM-1 noise meter: Modbus TCP, unit 1, holding registers (function 03).

A street-side sound level meter: about 45 dB(A) at night, 65-70 dB(A) by day with louder
rush hours; the maximum level sits 8-20 dB above the equivalent level. It also reports its
enclosure temperature, a little above the outdoor air.
"""

from __future__ import annotations

from misto.sim.devices.model import DeviceModel, RegisterTable, RegisterType, SimRegister, WordOrder
from misto.sim.signals import Bump, Daily, Daytime, Noise, Offset, Season, Wave

HOLDING = RegisterTable.HOLDING

NM1 = DeviceModel(
    id="nm1",
    title="Misto NM-1 noise meter",
    registers=(
        SimRegister(
            metric="LAeq",
            unit="dB(A)",
            table=HOLDING,
            address=0,
            type=RegisterType.FLOAT32,
            word_order=WordOrder.LITTLE,
            signal=Daily(
                base=45.0,
                daytime=Daytime(rise=21.0, start=6.5, end=22.5, ramp=1.0),
                bumps=(
                    Bump(hour=8, height=3.5, width=1.0, weekend=0.3),
                    Bump(hour=18.5, height=3.5, width=1.3, weekend=0.4),
                ),
                noise=Noise(sd=1.2, tau_s=120),
                floor=25.0,
                ceiling=130.0,
            ),
        ),
        SimRegister(
            metric="LAmax",
            unit="dB(A)",
            table=HOLDING,
            address=2,
            type=RegisterType.UINT16,
            scale=0.1,
            signal=Offset(of="LAeq", low=8.0, high=20.0, floor=30.0, ceiling=150.0),
        ),
        SimRegister(
            metric="temperature",
            unit="Cel",
            table=HOLDING,
            address=3,
            type=RegisterType.INT32,
            word_order=WordOrder.BIG,
            scale=0.001,
            signal=Daily(
                base=13.0,
                season=Season(amplitude=12.0, peak_day=200),
                waves=(Wave(amplitude=5.5, peak_hour=15),),
                noise=Noise(sd=0.3, tau_s=1800),
                floor=-40.0,
                ceiling=85.0,
            ),
        ),
    ),
)
