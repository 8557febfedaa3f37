"""The poll coordinator, on a clock the test drives, reading the real simulator."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from misto.edge.backoff import Backoff
from misto.edge.clock import ManualClock, SystemClock
from misto.edge.drivers import create_driver
from misto.edge.drivers.base import Driver
from misto.edge.polling import DeviceState, PollCoordinator
from misto.edge.polling.coordinator import PolledDevice
from misto.edge.settings import settings_from_data
from misto.protocol import Telemetry
from tests.fixtures.net import LOOPBACK, free_port

DEADLINE = 10.0


def make_drivers(clock: Any, *devices: dict[str, Any]) -> list[Driver]:
    base = {"driver": "modbus_tcp", "host": LOOPBACK, "timeout": 1, "retries": 0}
    settings = settings_from_data(
        {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}, "devices": [{**base, **d} for d in devices]},
        env={},
    )
    return [create_driver(d, clock=clock) for d in settings.devices]


async def until(what: str, condition: Callable[[], Any]) -> None:
    """Wait (in real time, with a deadline) for ``condition``."""
    async with asyncio.timeout(DEADLINE):
        while not condition():  # noqa: ASYNC110 - the condition is set by other tasks and sockets
            await asyncio.sleep(0.005)


class Run:
    """A coordinator running in the background, with the messages it emitted."""

    def __init__(self, coordinator: PollCoordinator, clock: ManualClock, groups: int) -> None:
        self.coordinator = coordinator
        self.clock = clock
        self.groups = groups
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Run:
        self.task = asyncio.create_task(self.coordinator.run())
        await until("the first cycle", lambda: self.clock.sleepers == self.groups)
        return self

    async def tick(self, seconds: float) -> None:
        """Move the clock and wait until every group has finished its cycles and sleeps again."""
        self.clock.advance(seconds)
        await until(f"cycles at t={self.clock.monotonic()}", lambda: self.clock.sleepers == self.groups)

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def collector() -> tuple[list[Telemetry], Callable[[Telemetry], Any]]:
    sent: list[Telemetry] = []

    async def sink(message: Telemetry) -> None:
        sent.append(message)

    return sent, sink


async def test_one_message_per_cycle_with_every_reading(start_sim: Any) -> None:
    sim = start_sim("aq1", "nm1")
    clock = ManualClock()
    aq, nm = make_drivers(
        clock,
        {"id": "aq-1", "port": sim.ports["aq1"], "profile": "aq1"},
        {"id": "nm-1", "port": sim.ports["nm1"], "profile": "nm1"},
    )
    sent, sink = collector()
    coordinator = PollCoordinator(
        gateway_id="gw-test", boot="boot-1", devices=[PolledDevice(aq, 5), PolledDevice(nm, 5)], sink=sink, clock=clock
    )
    async with Run(coordinator, clock, groups=1) as run:
        await run.tick(5)
        await run.tick(5)
    assert [m.seq for m in sent] == [0, 1, 2]
    assert {(m.gateway, m.boot, m.schema) for m in sent} == {("gw-test", "boot-1", 1)}
    for message in sent:
        assert sorted({r.device for r in message.readings}) == ["aq-1", "nm-1"]
        assert len(message.readings) == 8 + 3
    assert [m.sent_at for m in sent] == [clock.now().replace(second=s) for s in (0, 5, 10)]
    expected = sim.values("nm1")
    assert {r.metric: r.value for r in sent[-1].readings if r.device == "nm-1"} == pytest.approx(expected, rel=1e-6)
    assert coordinator.stats.cycles == 3
    assert coordinator.stats.messages == 3
    assert coordinator.stats.readings == 33


async def test_intervals_stay_on_one_grid(start_sim: Any) -> None:
    """A 1 s and a 2 s device: cycles at 0,1,2,3,4 and 0,2,4 of the same monotonic grid."""
    sim = start_sim("aq1", "nm1")
    clock = ManualClock()
    aq, nm = make_drivers(
        clock,
        {"id": "aq-1", "port": sim.ports["aq1"], "profile": "aq1"},
        {"id": "nm-1", "port": sim.ports["nm1"], "profile": "nm1"},
    )
    sent, sink = collector()
    coordinator = PollCoordinator(
        gateway_id="gw-test", boot="b", devices=[PolledDevice(aq, 1), PolledDevice(nm, 2)], sink=sink, clock=clock
    )
    async with Run(coordinator, clock, groups=2) as run:
        for _ in range(4):
            await run.tick(1)
    times = {"aq-1": [], "nm-1": []}  # type: dict[str, list[int]]
    for message in sent:
        (device,) = {r.device for r in message.readings}  # different intervals: separate messages
        times[device].append(int((message.sent_at - sent[0].sent_at).total_seconds()))
    assert times == {"aq-1": [0, 1, 2, 3, 4], "nm-1": [0, 2, 4]}
    assert sorted(m.seq for m in sent) == list(range(8))


async def test_failing_device_backs_off_logs_once_and_recovers(
    start_sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sim = start_sim("aq1")
    dead_port = free_port()
    clock = ManualClock()
    good, bad = make_drivers(
        clock,
        {"id": "aq-1", "port": sim.ports["aq1"], "profile": "aq1"},
        {"id": "nm-1", "port": dead_port, "profile": "nm1"},
    )
    sent, sink = collector()
    coordinator = PollCoordinator(
        gateway_id="gw-test",
        boot="b",
        devices=[PolledDevice(good, 1), PolledDevice(bad, 1)],
        sink=sink,
        clock=clock,
        backoff_max=4,
    )
    attempts: list[int] = []
    caplog.set_level(logging.INFO, logger="misto.edge.polling")
    async with Run(coordinator, clock, groups=1) as run:
        health = coordinator.health["nm-1"]
        reads = health.reads_total
        for t in range(1, 13):
            if t == 9:
                start_sim("nm1", ports={"nm1": dead_port})
            await run.tick(1)
            if health.reads_total != reads:
                attempts.append(t)
                reads = health.reads_total
    # start() failed at 0; then retried after 1, 2, 4, 4 s (capped), recovering at 11 once the device is back.
    assert attempts == [1, 3, 7, 11, 12]
    assert health.state is DeviceState.AVAILABLE
    assert health.failures_total == 4  # the failed start at t=0 and the reads at 1, 3 and 7
    assert coordinator.stats.read_failures == 4
    # The good device was read in every cycle, unaffected.
    assert [sum(r.device == "aq-1" for r in m.readings) for m in sent] == [8] * 13
    assert [sum(r.device == "nm-1" for r in m.readings) for m in sent][11:] == [3, 3]
    records = [r.getMessage() for r in caplog.records if "nm-1" in r.getMessage()]
    assert [m.split(":")[1].strip() for m in records] == ["unavailable", "available again after 4 failed attempt(s)"]


async def test_devices_of_a_cycle_are_read_concurrently(start_sim: Any) -> None:
    """A silent device (0.5 s timeout) does not delay reading the others in the same cycle."""
    sim = start_sim("aq1")
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, LOOPBACK, 0)
    clock = SystemClock()
    good, silent = make_drivers(
        clock,
        {"id": "aq-1", "port": sim.ports["aq1"], "profile": "aq1"},
        {"id": "nm-1", "port": server.sockets[0].getsockname()[1], "profile": "nm1", "timeout": 0.5},
    )
    _sent, sink = collector()
    coordinator = PollCoordinator(
        gateway_id="gw-test", boot="b", devices=[PolledDevice(good, 5), PolledDevice(silent, 5)], sink=sink, clock=clock
    )
    try:
        started = time.monotonic()
        wall = clock.now()
        (message,) = await coordinator.poll_once([good, silent], clock.monotonic())
        elapsed = time.monotonic() - started
    finally:
        await good.close()
        await silent.close()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert elapsed >= 0.5
    assert {r.device for r in message.readings} == {"aq-1"}
    assert max((r.ts - wall).total_seconds() for r in message.readings) < 0.4
    assert coordinator.health["nm-1"].state is DeviceState.UNAVAILABLE


async def test_large_cycles_are_split(start_sim: Any) -> None:
    sim = start_sim("aq1")
    clock = ManualClock()
    (aq,) = make_drivers(clock, {"id": "aq-1", "port": sim.ports["aq1"], "profile": "aq1"})
    sent, sink = collector()
    coordinator = PollCoordinator(
        gateway_id="gw-test",
        boot="b",
        devices=[PolledDevice(aq, 1)],
        sink=sink,
        clock=clock,
        max_readings_per_message=3,
    )
    try:
        await coordinator.poll_once([aq], 0.0)
    finally:
        await aq.close()
    assert [len(m.readings) for m in sent] == [3, 3, 2]
    assert [m.seq for m in sent] == [0, 1, 2]


def test_bad_device_lists() -> None:
    clock = ManualClock()
    (aq,) = make_drivers(clock, {"id": "aq-1", "port": 1, "profile": "aq1"})
    _, sink = collector()
    with pytest.raises(ValueError, match="positive"):
        PollCoordinator(gateway_id="g", boot="b", devices=[PolledDevice(aq, 0)], sink=sink, clock=clock)
    with pytest.raises(ValueError, match="twice"):
        PollCoordinator(gateway_id="g", boot="b", devices=[PolledDevice(aq, 1)] * 2, sink=sink, clock=clock)


async def test_manual_clock_wakes_sleepers_in_order() -> None:
    clock = ManualClock()
    woke: list[str] = []

    async def sleeper(name: str, deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper(n, d)) for n, d in (("b", 2.0), ("a", 1.0), ("now", 0.0))]
    await until("sleepers", lambda: clock.sleepers == 2 and woke == ["now"])
    clock.advance(1.5)
    await until("a", lambda: woke == ["now", "a"])
    clock.advance(0.5)
    await asyncio.gather(*tasks)
    assert woke == ["now", "a", "b"]
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_backoff_is_capped_exponential_with_bounded_jitter() -> None:
    plain = Backoff(initial=1, maximum=10)
    assert [plain.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    plain.reset()
    assert plain.next_delay() == 1
    jittered = Backoff(initial=1, maximum=10, jitter=0.5, rng=random.Random(1))
    delays = [jittered.next_delay() for _ in range(200)]
    assert all(0.5 <= d <= 10 for d in delays)
    assert max(delays) > 9
    assert min(delays[10:]) >= 5
    assert len(set(delays)) > 100
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0, maximum=1)
