"""Signal shapes with a driven clock (Kyiv local time), and reproducibility with a seed."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from misto.sim.device import SimulatedDevice
from misto.sim.devices import MODELS, DeviceModel
from misto.sim.signals import KYIV, Daily, Moment, Noise, OrnsteinUhlenbeck, SignalSet

AQ1, NM1 = MODELS["aq1"], MODELS["nm1"]
SEEDS = range(150)
WEDNESDAY = datetime(2025, 6, 4, tzinfo=KYIV)  # a weekday in summer (EEST, UTC+3)
SATURDAY = datetime(2025, 6, 7, tzinfo=KYIV)


def at(day: datetime, hour: float) -> datetime:
    return day + timedelta(hours=hour)


def mean_of(model: DeviceModel, metric: str, when: datetime) -> float:
    """The metric's mean over many independently seeded devices at one instant."""
    return statistics.fmean(SimulatedDevice(model, seed=s, key="t").update(when).values[metric] for s in SEEDS)


def pattern(model: DeviceModel, metric: str, when: datetime) -> float:
    signal = model.register(metric).signal
    assert isinstance(signal, Daily)
    return signal.pattern(Moment.of(when))


def test_moment_uses_kyiv_local_time_with_daylight_saving() -> None:
    summer = Moment.of(datetime(2025, 6, 4, 5, 0, tzinfo=UTC))
    winter = Moment.of(datetime(2025, 1, 15, 6, 0, tzinfo=UTC))
    assert summer.hour == 8.0  # UTC+3 in summer
    assert winter.hour == 8.0  # UTC+2 in winter
    assert not summer.weekend
    assert Moment.of(datetime(2025, 6, 7, 12, tzinfo=UTC)).weekend


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        Moment.of(datetime(2025, 6, 4, 8, 0))


def test_pm25_rises_in_both_rush_hours() -> None:
    night, morning, evening = (mean_of(AQ1, "pm25", at(WEDNESDAY, h)) for h in (3, 8, 19))
    assert 9 < night < 15  # base ~12 µg/m³
    assert morning > night + 6
    assert evening > night + 8


def test_rush_hours_are_weaker_at_weekends() -> None:
    for metric in ("pm25", "no2", "co"):
        weekday_bump = pattern(AQ1, metric, at(WEDNESDAY, 8)) - pattern(AQ1, metric, at(WEDNESDAY, 3))
        weekend_bump = pattern(AQ1, metric, at(SATURDAY, 8)) - pattern(AQ1, metric, at(SATURDAY, 3))
        assert 0 < weekend_bump < 0.7 * weekday_bump, metric


def test_pm10_is_one_and_a_half_to_one_point_eight_times_pm25() -> None:
    for s in range(20):
        device = SimulatedDevice(AQ1, seed=s, key="t")
        for minutes in range(0, 24 * 60, 37):
            eng = device.update(at(WEDNESDAY, minutes / 60)).engineering
            assert 1.5 * eng["pm25"] - 1e-9 <= eng["pm10"] <= 1.8 * eng["pm25"] + 1e-9


def test_no2_and_co_follow_the_traffic() -> None:
    for metric in ("no2", "co"):
        night = mean_of(AQ1, metric, at(WEDNESDAY, 3))
        assert mean_of(AQ1, metric, at(WEDNESDAY, 8)) > 1.8 * night, metric
        assert mean_of(AQ1, metric, at(WEDNESDAY, 18.5)) > 1.8 * night, metric
        assert mean_of(AQ1, metric, at(WEDNESDAY, 13)) < mean_of(AQ1, metric, at(WEDNESDAY, 18.5)), metric


def test_ozone_peaks_in_the_afternoon() -> None:
    by_hour = {h: pattern(AQ1, "o3", at(WEDNESDAY, h)) for h in range(24)}
    assert max(by_hour, key=lambda h: by_hour[h]) == 15
    assert mean_of(AQ1, "o3", at(WEDNESDAY, 15)) > mean_of(AQ1, "o3", at(WEDNESDAY, 4)) + 30


def test_temperature_peaks_at_15h_and_follows_the_season() -> None:
    by_hour = {h: pattern(AQ1, "temperature", at(WEDNESDAY, h)) for h in range(24)}
    assert max(by_hour, key=lambda h: by_hour[h]) == 15
    assert min(by_hour, key=lambda h: by_hour[h]) == 3
    july = mean_of(AQ1, "temperature", datetime(2025, 7, 20, 15, tzinfo=KYIV))
    january = mean_of(AQ1, "temperature", datetime(2025, 1, 20, 15, tzinfo=KYIV))
    assert 25 < july < 32
    assert -2 < january < 6


def test_relative_humidity_is_a_ratio_falling_as_temperature_rises() -> None:
    afternoon = mean_of(AQ1, "relativeHumidity", at(WEDNESDAY, 15))
    dawn = mean_of(AQ1, "relativeHumidity", at(WEDNESDAY, 4))
    assert 0 < afternoon < dawn < 1
    assert dawn - afternoon > 0.1


def test_pressure_stays_near_1013_hpa_and_drifts_slowly() -> None:
    device = SimulatedDevice(AQ1, seed=3, key="t")
    values = [device.update(at(WEDNESDAY, m / 60)).values["atmosphericPressure"] for m in range(0, 600, 10)]
    assert all(990 < v < 1036 for v in values)
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 0.5  # hPa per 10 minutes
    assert 1005 < mean_of(AQ1, "atmosphericPressure", at(WEDNESDAY, 12)) < 1021


def test_noise_level_is_quiet_at_night_and_loud_by_day() -> None:
    night = mean_of(NM1, "LAeq", at(WEDNESDAY, 3))
    midday = mean_of(NM1, "LAeq", at(WEDNESDAY, 13))
    rush = mean_of(NM1, "LAeq", at(WEDNESDAY, 8))
    assert 43 < night < 47
    assert 64 < midday < 69
    assert midday + 2 < rush < 72


def test_lamax_is_8_to_20_db_above_laeq() -> None:
    device = SimulatedDevice(NM1, seed=11, key="t")
    for minutes in range(0, 24 * 60, 7):
        eng = device.update(at(WEDNESDAY, minutes / 60)).engineering
        assert 8 - 1e-9 <= eng["LAmax"] - eng["LAeq"] <= 20 + 1e-9


def test_noise_is_correlated_over_time() -> None:
    """Consecutive seconds differ far less than the noise's spread: values wander, not jump."""
    device = SimulatedDevice(AQ1, seed=5, key="t")
    values = [device.update(at(WEDNESDAY, 3) + timedelta(seconds=s)).engineering["pm25"] for s in range(120)]
    steps = [abs(b - a) for a, b in itertools.pairwise(values)]
    assert max(steps) < 0.6
    assert len(set(values)) > 100  # and it does move


def test_same_seed_and_instants_give_the_same_values() -> None:
    instants = [at(WEDNESDAY, 7) + timedelta(seconds=s) for s in range(0, 300, 5)]
    runs = []
    for _ in range(2):
        device = SimulatedDevice(AQ1, seed=42, key="aq1@127.0.0.1:5020/1")
        runs.append([device.update(t).values for t in instants])
    assert runs[0] == runs[1]
    other = SimulatedDevice(AQ1, seed=43, key="aq1@127.0.0.1:5020/1")
    assert [other.update(t).values for t in instants] != runs[0]


def test_device_instances_with_different_keys_differ() -> None:
    when = at(WEDNESDAY, 8)
    a = SimulatedDevice(AQ1, seed=1, key="aq1@127.0.0.1:5020/1").update(when).values
    b = SimulatedDevice(AQ1, seed=1, key="aq1@127.0.0.1:5021/1").update(when).values
    assert a != b


def test_ornstein_uhlenbeck_repeats_an_instant_and_has_the_declared_spread() -> None:
    import random

    process = OrnsteinUhlenbeck(random.Random(7), Noise(sd=2.0, tau_s=60))
    first = process.at(1000.0)
    assert process.at(1000.0) == first
    assert process.at(999.0) == first  # a clock going backwards holds the value
    samples = [process.at(1000.0 + 600 * i) for i in range(1, 4000)]  # 10 tau apart: independent
    assert 1.85 < statistics.pstdev(samples) < 2.15
    assert abs(statistics.fmean(samples)) < 0.15


def test_signals_are_clamped_to_the_sensor_range() -> None:
    signal = Daily(base=5.0, noise=Noise(sd=50.0), floor=0.0, ceiling=10.0)
    import random

    signals = SignalSet([("pm25", signal)], random.Random)
    values = [signals.sample(at(WEDNESDAY, h))["pm25"] for h in range(24 * 30)]
    assert min(values) == 0.0
    assert max(values) == 10.0


def test_scaled_clock_starts_at_start_on_first_call_then_runs_scaled() -> None:
    from datetime import UTC, datetime, timedelta

    from misto.sim.clock import ScaledClock

    ticks = iter([100.0, 105.0, 107.5])
    start = datetime(2025, 6, 4, 5, tzinfo=UTC)
    clock = ScaledClock(start, speed=60, monotonic=lambda: next(ticks))
    assert clock() == start  # however long after construction the first call comes
    assert clock() == start + timedelta(minutes=5)
    assert clock() == start + timedelta(minutes=7.5)
