"""Signals: what a simulated sensor measures, as a function of local time plus correlated noise.

Signals are frozen data declared next to the register maps (``misto.sim.devices``).
:class:`SignalSet` evaluates the signals of one device instance with its own seeded random
generators. Nothing here reads the wall clock: every evaluation is given the instant it is
for, so tests drive time and a seed makes a run repeatable.

The city's clock is Europe/Kyiv local time (EET/EEST, with daylight saving): rush hours,
afternoon peaks and night-time lows happen at local hours, whatever the UTC offset.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

KYIV = ZoneInfo("Europe/Kyiv")
HOURS_PER_DAY = 24.0
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class Moment:
    """One instant, seen both in UTC and on the local clock of the simulated city."""

    utc: datetime
    local: datetime

    @classmethod
    def of(cls, at: datetime, tz: ZoneInfo = KYIV) -> Moment:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"signals need an aware datetime, got naive {at.isoformat()}")
        return cls(utc=at.astimezone(UTC), local=at.astimezone(tz))

    @property
    def hour(self) -> float:
        """Local hour of the day, 0 <= hour < 24, with fractions."""
        t = self.local
        return t.hour + t.minute / 60 + (t.second + t.microsecond / 1e6) / 3600

    @property
    def weekend(self) -> bool:
        return self.local.weekday() >= 5

    @property
    def day_of_year(self) -> float:
        """Local day of the year, 0 on 1 January at midnight, with fractions."""
        return self.local.timetuple().tm_yday - 1 + self.hour / HOURS_PER_DAY

    @property
    def timestamp(self) -> float:
        return self.utc.timestamp()


# ---------------------------------------------------------------------------------------------
# Building blocks of a daily pattern
# ---------------------------------------------------------------------------------------------


def _hour_distance(a: float, b: float) -> float:
    """Distance between two hours of the day on the 24-hour circle."""
    d = abs(a - b) % HOURS_PER_DAY
    return min(d, HOURS_PER_DAY - d)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True, slots=True, kw_only=True)
class Noise:
    """Correlated noise: an Ornstein-Uhlenbeck process with standard deviation ``sd`` that
    forgets its past over ``tau_s`` seconds (so values wander instead of jumping)."""

    sd: float
    tau_s: float = 600.0

    def describe(self) -> str:
        if self.sd == 0:
            return "no noise"
        for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60)):
            if self.tau_s >= seconds:
                return f"noise sd {self.sd:g} over {self.tau_s / seconds:g} {unit}"
        return f"noise sd {self.sd:g} over {self.tau_s:g} s"


NO_NOISE = Noise(sd=0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bump:
    """A bell-shaped rise around a local hour, such as a rush hour. ``width`` is the standard
    deviation in hours; on Saturdays and Sundays the height is multiplied by ``weekend``."""

    hour: float
    height: float
    width: float = 1.5
    weekend: float = 1.0

    def at(self, moment: Moment) -> float:
        height = self.height * (self.weekend if moment.weekend else 1.0)
        d = _hour_distance(moment.hour, self.hour)
        return height * math.exp(-0.5 * (d / self.width) ** 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Wave:
    """A cosine over the day: ``amplitude`` above the base at ``peak_hour``, as far below it
    half a period later. ``period_hours`` 12 gives the twice-daily atmospheric tide."""

    amplitude: float
    peak_hour: float
    period_hours: float = HOURS_PER_DAY

    def at(self, moment: Moment) -> float:
        return self.amplitude * math.cos(2 * math.pi * (moment.hour - self.peak_hour) / self.period_hours)


@dataclass(frozen=True, slots=True, kw_only=True)
class Season:
    """A cosine over the year, ``amplitude`` above the base on ``peak_day`` (0 = 1 January)."""

    amplitude: float
    peak_day: float

    def at(self, moment: Moment) -> float:
        return self.amplitude * math.cos(2 * math.pi * (moment.day_of_year - self.peak_day) / DAYS_PER_YEAR)


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """A slow swing over days, ``amplitude`` either way with period ``period_hours``, on the
    absolute clock: city-wide weather, the same for every device. A few drifts with unrelated
    periods add up to an irregular but smooth wander."""

    amplitude: float
    period_hours: float

    def at(self, moment: Moment) -> float:
        return self.amplitude * math.sin(2 * math.pi * moment.timestamp / (self.period_hours * 3600))


@dataclass(frozen=True, slots=True, kw_only=True)
class Daytime:
    """A plateau ``rise`` above the base between local hours ``start`` and ``end``, with
    smooth edges about ``ramp`` hours long (the city waking up and going to sleep)."""

    rise: float
    start: float
    end: float
    ramp: float = 1.0

    def at(self, moment: Moment) -> float:
        h = moment.hour
        steep = 4.0 / self.ramp
        return self.rise * _sigmoid((h - self.start) * steep) * _sigmoid((self.end - h) * steep)


# ---------------------------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------------------------


class Signal(Protocol):
    """What one register measures. ``value`` gives the value before clamping; the caller adds
    nothing and clamps the result to the sensor's measuring range ``[floor, ceiling]``."""

    @property
    def floor(self) -> float: ...

    @property
    def ceiling(self) -> float: ...

    @property
    def noise(self) -> Noise: ...

    @property
    def inputs(self) -> tuple[str, ...]:
        """Metrics of the same device this signal is computed from."""
        ...

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float: ...

    def describe(self) -> str:
        """One line for people: what shape this signal has."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Daily:
    """A base level shaped by the local time of day (and of year), plus correlated noise."""

    base: float
    floor: float
    ceiling: float
    season: Season | None = None
    waves: tuple[Wave, ...] = ()
    drifts: tuple[Drift, ...] = ()
    daytime: Daytime | None = None
    bumps: tuple[Bump, ...] = ()
    noise: Noise = NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()

    def pattern(self, moment: Moment) -> float:
        """The value without noise."""
        total = self.base
        if self.season is not None:
            total += self.season.at(moment)
        total += sum(w.at(moment) for w in self.waves)
        total += sum(d.at(moment) for d in self.drifts)
        if self.daytime is not None:
            total += self.daytime.at(moment)
        total += sum(b.at(moment) for b in self.bumps)
        return total

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return self.pattern(moment) + noise

    def describe(self) -> str:
        parts = [f"base {self.base:g}"]
        if self.season is not None:
            parts.append(f"season ±{self.season.amplitude:g} peaking on day {self.season.peak_day:g}")
        parts += [f"wave ±{w.amplitude:g} peaking {w.peak_hour:g}h every {w.period_hours:g}h" for w in self.waves]
        parts += [f"drift ±{d.amplitude:g} over {d.period_hours:g}h" for d in self.drifts]
        if self.daytime is not None:
            d = self.daytime
            parts.append(f"+{d.rise:g} from {d.start:g}h to {d.end:g}h")
        parts += [
            f"{'+' if b.height >= 0 else ''}{b.height:g} around {b.hour:g}h"
            + (f" (×{b.weekend:g} at weekends)" if b.weekend != 1.0 else "")
            for b in self.bumps
        ]
        parts.append(self.noise.describe())
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Constant:
    """Always ``level`` (a test bench's known values, a fixed configuration)."""

    level: float

    @property
    def floor(self) -> float:
        return self.level

    @property
    def ceiling(self) -> float:
        return self.level

    @property
    def noise(self) -> Noise:
        return NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return ()

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return self.level

    def describe(self) -> str:
        return f"constant {self.level:g}"


def _within(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ratio:
    """``of`` times a factor that wanders between ``low`` and ``high`` (pm10 from pm25)."""

    of: str
    low: float
    high: float
    floor: float
    ceiling: float
    tau_s: float = 1800.0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.of,)

    @property
    def noise(self) -> Noise:
        return Noise(sd=(self.high - self.low) / 4, tau_s=self.tau_s)

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        factor = _within((self.low + self.high) / 2 + noise, self.low, self.high)
        return inputs[self.of] * factor

    def describe(self) -> str:
        return f"{self.of} × {self.low:g}..{self.high:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Offset:
    """``of`` plus an offset that wanders between ``low`` and ``high`` (LAmax from LAeq)."""

    of: str
    low: float
    high: float
    floor: float
    ceiling: float
    tau_s: float = 60.0

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.of,)

    @property
    def noise(self) -> Noise:
        return Noise(sd=(self.high - self.low) / 4, tau_s=self.tau_s)

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return inputs[self.of] + _within((self.low + self.high) / 2 + noise, self.low, self.high)

    def describe(self) -> str:
        return f"{self.of} + {self.low:g}..{self.high:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Linear:
    """A straight line through (``reference``, ``at_reference``) with ``slope`` per unit of
    ``of``, plus noise (relative humidity falling as temperature rises)."""

    of: str
    reference: float
    at_reference: float
    slope: float
    floor: float
    ceiling: float
    noise: Noise = NO_NOISE

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.of,)

    def value(self, moment: Moment, inputs: Mapping[str, float], noise: float) -> float:
        return self.at_reference + self.slope * (inputs[self.of] - self.reference) + noise

    def describe(self) -> str:
        return (
            f"{self.at_reference:g} at {self.of}={self.reference:g}, {self.slope:+g} per unit of {self.of}, "
            f"{self.noise.describe()}"
        )


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


class OrnsteinUhlenbeck:
    """Mean-reverting random walk sampled at arbitrary instants. Its first value is drawn from
    the stationary distribution; an instant not after the previous one repeats the last value."""

    def __init__(self, rng: random.Random, noise: Noise) -> None:
        self._rng = rng
        self._sd = noise.sd
        self._tau = noise.tau_s
        self._x: float | None = None
        self._t = 0.0

    def at(self, t: float) -> float:
        if self._sd == 0.0:
            return 0.0
        if self._x is None:
            self._x = self._sd * self._rng.gauss()
        elif t > self._t:
            keep = math.exp(-(t - self._t) / self._tau)
            self._x = self._x * keep + self._sd * math.sqrt(1.0 - keep * keep) * self._rng.gauss()
        else:
            return self._x
        self._t = t
        return self._x


@runtime_checkable
class Process(Protocol):
    """The running state of a stateful signal in one device instance (see :mod:`misto.sim.processes`)."""

    def at(self, moment: Moment, inputs: Mapping[str, float]) -> float: ...


@runtime_checkable
class StatefulSignal(Protocol):
    """A signal whose value depends on its own history (a parking bay stays occupied for a while, a
    bin fills until it is emptied): :meth:`start` makes its state for one device instance."""

    def start(self, rng: random.Random) -> Process: ...


class SignalSet:
    """The signals of one device instance, evaluated together in dependency order.

    ``rng_for(key)`` gives each row its own generator, so adding a row to a model does not
    change the values of the others for the same seed.
    """

    def __init__(self, signals: Sequence[tuple[str, Signal]], rng_for: Callable[[str], random.Random]) -> None:
        self._signals = tuple(signals)
        self._noise: dict[str, OrnsteinUhlenbeck] = {}
        self._processes: dict[str, Process] = {}
        for key, signal in self._signals:
            if isinstance(signal, StatefulSignal):
                self._processes[key] = signal.start(rng_for(key))
            else:
                self._noise[key] = OrnsteinUhlenbeck(rng_for(key), signal.noise)

    def sample(self, at: datetime) -> dict[str, float]:
        """Every row's value at ``at``, clamped to its sensor's measuring range."""
        moment = Moment.of(at)
        values: dict[str, float] = {}
        for key, signal in self._signals:
            process = self._processes.get(key)
            if process is not None:
                raw = process.at(moment, values)
            else:
                raw = signal.value(moment, values, self._noise[key].at(moment.timestamp))
            values[key] = _within(raw, signal.floor, signal.ceiling)
        return values
