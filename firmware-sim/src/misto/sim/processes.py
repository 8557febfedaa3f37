"""Signals with a memory: a parking bay that stays occupied for a while, a bin that fills for days
until the lorry empties it, a container that is knocked over and stays so until someone rights
it. Each is frozen data (like :mod:`misto.sim.signals`) whose :meth:`start` gives the running
state of one device instance, drawn from that instance's own random generator.

Every process is sampled at increasing instants; an instant not after the previous one repeats
the last value, so a frozen simulator holds still.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from misto.sim.signals import NO_NOISE, Daily, Moment, Noise, Process

# ---------------------------------------------------------------------------------------------
# Parking bay occupancy: a two-state Markov chain following the time of day
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Occupancy:
    """1 while a car is in the bay, 0 while it is free. The chance of finding the bay occupied
    follows ``target`` (a daily pattern, 0..1); cars stay ``mean_stay_minutes`` on average, so
    a bay changes state a few times a day rather than every second."""

    target: Daily
    mean_stay_minutes: float = 90.0
    floor: float = 0.0
    ceiling: float = 1.0
    noise: Noise = NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()

    def probability(self, moment: Moment) -> float:
        return min(max(self.target.pattern(moment), 0.02), 0.98)

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return self.probability(moment)

    def describe(self) -> str:
        return f"occupied with probability {self.target.describe()}; cars stay {self.mean_stay_minutes:g} min"

    def start(self, rng: random.Random) -> Process:
        return _MarkovBay(self, rng)


class _MarkovBay:
    def __init__(self, signal: Occupancy, rng: random.Random) -> None:
        self._signal = signal
        self._rng = rng
        self._state: int | None = None
        self._t = 0.0

    def at(self, moment: Moment, inputs: Mapping[str, float]) -> float:
        p = self._signal.probability(moment)
        t = moment.timestamp
        if self._state is None:
            self._state = int(self._rng.random() < p)
        elif t > self._t:
            leave = 1.0 / (self._signal.mean_stay_minutes * 60.0)  # per second
            arrive = leave * p / (1.0 - p)
            keep = math.exp(-(arrive + leave) * (t - self._t))
            occupied = p + (self._state - p) * keep
            self._state = int(self._rng.random() < occupied)
        else:
            return float(self._state)
        self._t = t
        return float(self._state)


# ---------------------------------------------------------------------------------------------
# Waste bin filling level: fills with the life of the street, emptied on collection days
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FillCycle:
    """A container's filling level (0..1): it fills at ``per_day`` of its volume a day, shaped by
    ``activity`` (a daily pattern around 1: more by day, little at night), and is emptied on
    ``collection_days`` (0 = Monday) at ``collection_hour`` local time; full is full (1.0).
    Each instance fills ``spread`` faster or slower than the nominal rate (a busy corner, a
    quiet yard), and its sensor reads within ``jitter``."""

    per_day: float
    activity: Daily
    collection_days: tuple[int, ...] = (0, 2, 4)
    collection_hour: float = 6.5
    spread: float = 0.35
    jitter: float = 0.01
    step_minutes: float = 15.0
    floor: float = 0.0
    ceiling: float = 1.0
    noise: Noise = NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return self.level(moment, 1.0)

    def describe(self) -> str:
        days = "/".join(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[d] for d in self.collection_days)
        return (
            f"fills {self.per_day:g}/day (±{self.spread:.0%} per bin) by {self.activity.describe()}; "
            f"emptied {days} at {self.collection_hour:g}h"
        )

    def last_collection(self, moment: Moment) -> Moment:
        """The latest collection at or before ``moment`` (local time)."""
        local = moment.local
        hour, minute = int(self.collection_hour), round((self.collection_hour % 1) * 60)
        for back in range(8):
            day = local - timedelta(days=back)
            at = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if day.weekday() in self.collection_days and at <= local:
                return Moment.of(at)
        return Moment.of(local - timedelta(days=7))

    def level(self, moment: Moment, rate_factor: float) -> float:
        """The level at ``moment`` for a bin filling ``rate_factor`` times the nominal rate."""
        return min(self.filled(self.last_collection(moment), moment, rate_factor), 1.0)

    def filled(self, start: Moment, end: Moment, rate_factor: float) -> float:
        """What flows in between ``start`` and ``end`` (before the bin's capacity is applied)."""
        step = timedelta(minutes=self.step_minutes)
        amount, t = 0.0, start.local
        per_step = self.per_day * rate_factor * self.step_minutes / (24 * 60)
        while t + step <= end.local:
            amount += per_step * max(self.activity.pattern(Moment.of(t + step / 2)), 0.0)
            t += step
        rest = (end.local - t) / step
        return amount + per_step * rest * max(self.activity.pattern(end), 0.0)

    def start(self, rng: random.Random) -> Process:
        return _Bin(self, rng)


class _Bin:
    """Integrates only the time since the previous sample, unless a collection came in between."""

    def __init__(self, signal: FillCycle, rng: random.Random) -> None:
        self._signal = signal
        self._rng = rng
        self._factor = 1.0 + signal.spread * (2 * rng.random() - 1)
        self._previous: Moment | None = None
        self._collected: float | None = None
        self._filled = 0.0
        self._last = 0.0

    def at(self, moment: Moment, inputs: Mapping[str, float]) -> float:
        previous = self._previous
        if previous is not None and moment.timestamp <= previous.timestamp:
            return self._last
        collected = self._signal.last_collection(moment)
        if previous is None or collected.timestamp != self._collected:
            self._filled = self._signal.filled(collected, moment, self._factor)
        else:
            self._filled += self._signal.filled(previous, moment, self._factor)
        self._previous, self._collected = moment, collected.timestamp
        level = min(self._filled, 1.0)
        self._last = level + self._signal.jitter * (2 * self._rng.random() - 1) if level > 0 else 0.0
        return self._last


# ---------------------------------------------------------------------------------------------
# Alarms: rare events that last a while
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Events:
    """1 while an event is on, else 0: events start ``per_day`` times a day on average (at random
    instants) and last between ``min_minutes`` and ``max_minutes``. The same instance seed gives
    the same events at the same instants, however often it is sampled."""

    per_day: float
    min_minutes: float
    max_minutes: float
    floor: float = 0.0
    ceiling: float = 1.0
    noise: Noise = NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return 0.0

    def describe(self) -> str:
        return f"events {self.per_day:g}/day lasting {self.min_minutes:g}-{self.max_minutes:g} min"

    def start(self, rng: random.Random) -> Process:
        return _Alarm(self, rng.getrandbits(64))


class _Alarm:
    SLOT_S = 3600.0

    def __init__(self, signal: Events, seed: int) -> None:
        self._signal = signal
        self._seed = seed

    def _event(self, slot: int) -> tuple[float, float] | None:
        """(start, end) of the event starting in hour ``slot``, if there is one."""
        rng = random.Random(f"{self._seed}/{slot}")  # noqa: S311 - simulated events, not cryptography
        if rng.random() >= self._signal.per_day / 24:
            return None
        start = (slot + rng.random()) * self.SLOT_S
        minutes = rng.uniform(self._signal.min_minutes, self._signal.max_minutes)
        return start, start + minutes * 60

    def at(self, moment: Moment, inputs: Mapping[str, float]) -> float:
        t = moment.timestamp
        slot = math.floor(t / self.SLOT_S)
        back = math.ceil(self._signal.max_minutes * 60 / self.SLOT_S)
        for s in range(slot - back, slot + 1):
            event = self._event(s)
            if event is not None and event[0] <= t < event[1]:
                return 1.0
        return 0.0


# ---------------------------------------------------------------------------------------------
# Signals computed from others
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Heated:
    """``base`` (a daily pattern) plus ``rise`` while the flag ``of`` is 1 (a bin on fire)."""

    of: str
    base: Daily
    rise: float
    floor: float
    ceiling: float

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.of,)

    @property
    def noise(self) -> Noise:
        return self.base.noise

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return self.base.pattern(moment) + noise + (self.rise if inputs[self.of] >= 0.5 else 0.0)

    def describe(self) -> str:
        return f"{self.base.describe()}; +{self.rise:g} while {self.of}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeOccupancy:
    """The share of time a loop detector is covered: ``flow`` vehicles an hour, each
    ``vehicle_length_m`` long (plus the loop), passing at ``speed`` km/h."""

    flow: str
    speed: str
    vehicle_length_m: float
    floor: float
    ceiling: float
    noise: Noise = NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.flow, self.speed)

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        speed = max(inputs[self.speed], 1.0)
        return inputs[self.flow] * self.vehicle_length_m / 1000.0 / speed + noise

    def describe(self) -> str:
        return f"{self.flow} × {self.vehicle_length_m:g} m / {self.speed}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """How many of the flags ``of`` are 0 (``free``: free bays), or the share that are 1."""

    of: tuple[str, ...]
    free: bool
    floor: float
    ceiling: float
    noise: Noise = NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.of

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        occupied = sum(1 for name in self.of if inputs[name] >= 0.5)
        return float(len(self.of) - occupied) if self.free else occupied / len(self.of)

    def describe(self) -> str:
        what = "free" if self.free else "share occupied"
        return f"{what} of {len(self.of)} bays"
