"""Report by exception: the rules on their own, their configuration, and the coordinator applying them
to the real (frozen) simulator on a clock the test drives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from misto.edge.clock import ManualClock
from misto.edge.device_config.report import Deadband, ReportSettings
from misto.edge.drivers import create_driver
from misto.edge.errors import ConfigError
from misto.edge.polling.coordinator import PollCoordinator, PolledDevice
from misto.edge.polling.report import ReportFilter
from misto.edge.settings import settings_from_data
from misto.protocol import Reading, Telemetry
from tests.fixtures.net import LOOPBACK

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def reading(value: float, metric: str = "pm25", at: float = 0.0, device: str = "aq-1") -> Reading:
    return Reading(device=device, metric=metric, value=value, unit="ug/m3", ts=T0 + timedelta(seconds=at))


def feed(report: ReportFilter, values: list[float], metric: str = "pm25") -> list[float]:
    """One reading a second; returns the values sent."""
    sent = []
    for second, value in enumerate(values):
        sent += [r.value for r in report.select([reading(value, metric, second)], float(second))]
    return sent


def test_without_a_deadband_only_changes_are_sent() -> None:
    report = ReportFilter(ReportSettings(max_silence=100))
    assert feed(report, [10, 10, 10, 10.01, 10.01, 9]) == [10, 10.01, 9]
    assert report.suppressed == 3


def test_absolute_deadband_is_measured_from_the_last_value_sent() -> None:
    report = ReportFilter(ReportSettings(deadband=Deadband(absolute=1), max_silence=100))
    # 10.6 and 10.9 are within 1 of 10 (the last sent), 11.1 is not: no creeping past the band
    assert feed(report, [10, 10.6, 10.9, 11.1, 11.5, 12.0, 12.2]) == [10, 11.1, 12.2]


def test_percent_deadband_with_an_absolute_floor() -> None:
    report = ReportFilter(ReportSettings(deadband=Deadband(absolute=0.5, percent=10), max_silence=100))
    # band = max(0.5, 10% of the last sent): 10 at 100, 0.5 near zero
    assert feed(report, [100, 109, 111, 0.2, 0.6, 0.9, 1.2]) == [100, 111, 0.2, 0.9]


def test_max_silence_sends_a_steady_value_again_with_its_own_time() -> None:
    report = ReportFilter(ReportSettings(deadband=Deadband(absolute=5), max_silence=3))
    sent = []
    for second in range(8):
        sent += report.select([reading(7.0, at=second)], float(second))
    assert [r.ts for r in sent] == [T0, T0 + timedelta(seconds=3), T0 + timedelta(seconds=6)]


def test_per_metric_overrides_and_independent_series() -> None:
    settings = ReportSettings.model_validate(
        {"deadband": 1, "max_silence": 100, "metrics": {"temperature": {"deadband": 0.1, "max_silence": 2}}}
    )
    report = ReportFilter(settings)
    assert feed(report, [20.0, 20.05, 20.2, 20.25, 20.25], metric="temperature") == [20.0, 20.2, 20.25]
    assert feed(report, [5, 5.5, 6.5], metric="pm25") == [5, 6.5]
    # the same metric of two devices is two series
    first = report.select([reading(1, device="a"), reading(1, device="b")], 50.0)
    assert [r.device for r in first] == ["a", "b"]


def test_reset_sends_the_next_reading_whatever_it_is() -> None:
    report = ReportFilter(ReportSettings(deadband=Deadband(absolute=10), max_silence=100))
    assert feed(report, [1, 2]) == [1]
    report.reset()
    assert [r.value for r in report.select([reading(2)], 5.0)] == [2]


def test_report_settings_errors_name_their_path() -> None:
    base = {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}}
    device = {"id": "aq-1", "driver": "modbus_tcp", "host": LOOPBACK, "profile": "aq1"}
    bad = {"deadband": {}, "max_silence": 0, "metrics": {"pm25": {"deadband": -1}}}
    unknown = {"metrics": {"pm2_5": {"deadband": 1}}}
    with pytest.raises(ConfigError) as caught:
        settings_from_data({**base, "devices": [{**device, "report": bad}, {**device, "id": "b", "report": unknown}]})
    problems = {issue.path: issue.message for issue in caught.value.issues}
    assert "set absolute, percent or both" in problems["devices[0].report.deadband"]
    assert "positive duration" in problems["devices[0].report.max_silence"]
    assert "at least 0" in problems["devices[0].report.metrics.pm25.deadband.absolute"]
    assert "unknown metric(s) 'pm2_5'" in problems["devices[1].report.metrics"]
    good = settings_from_data({**base, "devices": [{**device, "report": {"deadband": 2}}]}, env={})
    report = good.devices[0].report
    assert report is not None
    assert report.rule("pm25").absolute == 2
    assert report.rule("pm25").max_silence == 900


async def test_coordinator_holds_back_unchanged_readings(start_sim: Any) -> None:
    """The frozen simulator never changes: after the first poll nothing is sent until max_silence."""
    sim = start_sim("nm1")
    clock = ManualClock()
    settings = settings_from_data(
        {
            "gateway_id": "gw-test",
            "broker": {"url": "mqtt://127.0.0.1"},
            "devices": [{"id": "nm-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": sim.ports["nm1"],
                         "timeout": 1, "profile": "nm1", "report": {"deadband": 0.1, "max_silence": "5s"}}],
        },
        env={},
    )  # fmt: skip
    (device,) = settings.devices
    sent: list[Telemetry] = []

    async def sink(message: Telemetry) -> None:
        sent.append(message)

    coordinator = PollCoordinator(
        gateway_id="gw-test",
        boot="b",
        devices=[PolledDevice(create_driver(device, clock=clock), 1.0, device.report)],
        sink=sink,
        clock=clock,
    )
    task = asyncio.create_task(coordinator.run())
    try:
        async with asyncio.timeout(10):
            for _ in range(11):
                while clock.sleepers != 1:  # noqa: ASYNC110 - the cycle runs in another task
                    await asyncio.sleep(0.005)
                clock.advance(1.0)
            while clock.sleepers != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [m.sent_at - clock.now() for m in sent] == [timedelta(seconds=s) for s in (-11, -6, -1)]
    assert all(len(m.readings) == 3 for m in sent)
    assert coordinator.stats.suppressed == 3 * 9
    health = coordinator.health["nm-1"]
    assert (health.reads_total, health.readings_total, health.suppressed_total) == (12, 36, 27)
    assert health.last_latency is not None
    assert len(health.last_values) == 3
