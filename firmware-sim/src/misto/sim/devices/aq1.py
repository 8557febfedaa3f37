"""Misto AQ-1 air-quality station: Modbus TCP, unit 1, input registers (function 04).

Typical of a street-side station in Kherson: fine particles around 12 µg/m³ rising with the
morning and evening traffic, NO2 and CO following the traffic, ozone peaking in the
afternoon sun, temperature following the season and the day, humidity falling as it warms,
pressure drifting slowly around 1013 hPa with the twice-daily atmospheric tide.
"""

from __future__ import annotations

from misto.sim.devices.model import DeviceModel, RegisterTable, RegisterType, SimRegister, WordOrder
from misto.sim.signals import Bump, Daily, Drift, Linear, Noise, Ratio, Season, Wave

INPUT = RegisterTable.INPUT
BIG, LITTLE = WordOrder.BIG, WordOrder.LITTLE

# Outdoor air temperature in Kherson: about -1 °C in January, 23 °C in July, warmest at 15h.
OUTDOOR_TEMPERATURE = Daily(
    base=11.0,
    season=Season(amplitude=12.0, peak_day=200),
    waves=(Wave(amplitude=4.5, peak_hour=15),),
    noise=Noise(sd=0.4, tau_s=1800),
    floor=-40.0,
    ceiling=60.0,
)

AQ1 = DeviceModel(
    id="aq1",
    title="Misto AQ-1 air-quality station",
    registers=(
        SimRegister(
            metric="pm25",
            unit="ug/m3",
            table=INPUT,
            address=0,
            type=RegisterType.UINT16,
            scale=0.1,
            signal=Daily(
                base=12.0,
                bumps=(
                    Bump(hour=8, height=9.0, width=1.3, weekend=0.5),
                    Bump(hour=19, height=11.0, width=1.8, weekend=0.6),
                ),
                noise=Noise(sd=2.0, tau_s=900),
                floor=0.0,
                ceiling=999.9,
            ),
        ),
        SimRegister(
            metric="pm10",
            unit="ug/m3",
            table=INPUT,
            address=1,
            type=RegisterType.UINT16,
            scale=0.1,
            signal=Ratio(of="pm25", low=1.5, high=1.8, floor=0.0, ceiling=1999.9),
        ),
        SimRegister(
            metric="no2",
            unit="ug/m3",
            table=INPUT,
            address=2,
            type=RegisterType.FLOAT32,
            word_order=BIG,
            signal=Daily(
                base=18.0,
                bumps=(
                    Bump(hour=8, height=22.0, width=1.2, weekend=0.4),
                    Bump(hour=18.5, height=26.0, width=1.6, weekend=0.5),
                ),
                noise=Noise(sd=3.0, tau_s=600),
                floor=0.0,
                ceiling=1000.0,
            ),
        ),
        SimRegister(
            metric="o3",
            unit="ug/m3",
            table=INPUT,
            address=4,
            type=RegisterType.FLOAT32,
            word_order=BIG,
            signal=Daily(
                base=30.0,
                bumps=(Bump(hour=15, height=45.0, width=2.8),),
                noise=Noise(sd=4.0, tau_s=1200),
                floor=0.0,
                ceiling=1000.0,
            ),
        ),
        SimRegister(
            metric="co",
            unit="mg/m3",
            table=INPUT,
            address=6,
            type=RegisterType.FLOAT32,
            word_order=LITTLE,
            signal=Daily(
                base=0.35,
                bumps=(
                    Bump(hour=8, height=0.35, width=1.2, weekend=0.4),
                    Bump(hour=19, height=0.45, width=1.6, weekend=0.5),
                ),
                noise=Noise(sd=0.05, tau_s=600),
                floor=0.0,
                ceiling=50.0,
            ),
        ),
        SimRegister(
            metric="temperature",
            unit="Cel",
            table=INPUT,
            address=8,
            type=RegisterType.INT16,
            scale=0.01,
            signal=OUTDOOR_TEMPERATURE,
        ),
        SimRegister(
            metric="relativeHumidity",
            unit="1",
            table=INPUT,
            address=9,
            type=RegisterType.UINT16,
            scale=0.0001,
            signal=Linear(
                of="temperature",
                reference=11.0,
                at_reference=0.68,
                slope=-0.018,
                noise=Noise(sd=0.02, tau_s=1800),
                floor=0.05,
                ceiling=1.0,
            ),
        ),
        SimRegister(
            metric="atmosphericPressure",
            unit="hPa",
            table=INPUT,
            address=10,
            type=RegisterType.UINT32,
            word_order=BIG,
            scale=0.01,
            signal=Daily(
                base=1013.0,
                waves=(Wave(amplitude=0.7, peak_hour=10, period_hours=12),),
                drifts=(Drift(amplitude=5.0, period_hours=97), Drift(amplitude=3.0, period_hours=41)),
                noise=Noise(sd=0.15, tau_s=3600),
                floor=960.0,
                ceiling=1050.0,
            ),
        ),
    ),
)
