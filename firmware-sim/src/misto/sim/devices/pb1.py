"""Misto PB-1 parking bay controller: eight in-ground bay sensors wired to one controller on an
RS-485 bus (Modbus RTU). Each bay's state is a discrete input (function 02): 1 occupied, 0 free;
the edge reports bay N as device ``<controller id>.bayN``. Input registers (function 04) hold
the number of free bays and the share occupied.

A street with shops and offices: a quarter of the bays taken at night by residents, most of
them by day, a busy evening; a car stays an hour and a half on average.
"""

from __future__ import annotations

from misto.sim.devices.model import DeviceModel, RegisterTable, RegisterType, SimRegister, SimText, Transport
from misto.sim.processes import Occupancy, Tally
from misto.sim.signals import Bump, Daily, Daytime

BAYS = 8
BAY_KEYS = tuple(f"bay{n}/occupied" for n in range(1, BAYS + 1))

DEMAND = Daily(
    base=0.25,
    daytime=Daytime(rise=0.5, start=8.0, end=19.0, ramp=1.5),
    bumps=(Bump(hour=20, height=0.15, width=1.5, weekend=1.5),),
    floor=0.0,
    ceiling=1.0,
)

PB1 = DeviceModel(
    id="pb1",
    title=f"Misto PB-1 parking bay controller ({BAYS} bays)",
    transport=Transport.RTU,
    registers=(
        *(
            SimRegister(
                metric="occupied",
                unit="1",
                table=RegisterTable.DISCRETE_INPUT,
                address=n - 1,
                type=RegisterType.BIT,
                subdevice=f"bay{n}",
                signal=Occupancy(target=DEMAND, mean_stay_minutes=90.0),
            )
            for n in range(1, BAYS + 1)
        ),
        SimRegister(
            metric="availableSpotNumber",
            unit="1",
            table=RegisterTable.INPUT,
            address=0,
            type=RegisterType.UINT16,
            signal=Tally(of=BAY_KEYS, free=True, floor=0.0, ceiling=float(BAYS)),
        ),
        SimRegister(
            metric="occupancy",
            unit="1",
            table=RegisterTable.INPUT,
            address=1,
            type=RegisterType.UINT16,
            scale=0.001,
            signal=Tally(of=BAY_KEYS, free=False, floor=0.0, ceiling=1.0),
        ),
    ),
    identity=(
        SimText(name="model", address=256, words=8, text="MISTO PB-1/8"),
        SimText(name="firmware", address=264, words=4, text="1.7.0"),
    ),
)
