"""The poll coordinator: reads every device at its interval and turns each poll cycle into one
:class:`~misto.protocol.Telemetry` message.

Devices with the same interval form a group; a group's cycles run on a fixed grid
``start + k * interval`` of the monotonic clock (no drift however long a read takes), and the
devices of one cycle are read concurrently. A cycle that overruns its interval skips the grid
points it missed (counted in ``overruns``) rather than bunching reads together. Every group shares
``start``, so a 10 s group's cycles coincide with every other cycle of a 5 s group.

A failed device is marked unavailable and skipped until its backoff has passed (see
:mod:`misto.edge.polling.health`); it never delays another device beyond the cycle it failed in,
and each read has a deadline. The switch to failure and the recovery are logged once each; every
failure is counted, by kind, with the read's latency kept per device for gateway health.

Report by exception: a device with ``report:`` settings has a :class:`ReportFilter`; only the
readings it selects go into the message (each with its own read time), the rest are counted as
suppressed. After a failure the filter forgets, so the first good reading is always sent.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from misto.edge.clock import Clock
from misto.edge.device_config.report import ReportSettings
from misto.edge.drivers.base import Driver
from misto.edge.errors import DeviceTimeout, DriverError
from misto.edge.polling.health import DeviceHealth
from misto.edge.polling.report import ReportFilter
from misto.protocol import Reading, Telemetry

log = logging.getLogger("misto.edge.polling")

MAX_READINGS_PER_MESSAGE = 1000
"""A cycle with more readings is split into several messages (each well under the payload limit)."""

TelemetrySink = Callable[[Telemetry], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PolledDevice:
    driver: Driver
    interval: float
    report: ReportSettings | None = None


@dataclass
class PollStats:
    cycles: int = 0
    messages: int = 0
    readings: int = 0
    empty_cycles: int = 0
    overruns: int = 0
    read_failures: int = 0
    suppressed: int = 0


class _Reconfigure(Exception):
    """Raised inside the poll task group to stop it for a reconfiguration."""


@dataclass(frozen=True)
class _Change:
    devices: tuple[PolledDevice, ...]
    retire: tuple[Driver, ...]
    done: asyncio.Future[None]


@dataclass
class _Group:
    interval: float
    devices: list[Driver] = field(default_factory=list)


class PollCoordinator:
    """Polls devices and hands one telemetry message per cycle to ``sink``. Run it with :meth:`run`."""

    def __init__(
        self,
        *,
        gateway_id: str,
        boot: str,
        devices: Sequence[PolledDevice],
        sink: TelemetrySink,
        clock: Clock,
        backoff_max: float = 300.0,
        max_readings_per_message: int = MAX_READINGS_PER_MESSAGE,
    ) -> None:
        self.gateway_id = gateway_id
        self.boot = boot
        self.clock = clock
        self.stats = PollStats()
        self.health: dict[str, DeviceHealth] = {}
        self._filters: dict[str, ReportFilter] = {}
        self._sink = sink
        self._seq = 0
        self._emit_lock = asyncio.Lock()
        self._max_readings = max_readings_per_message
        self._backoff_max = backoff_max
        self._drivers: list[Driver] = []
        self._groups: list[_Group] = []
        self._started: set[int] = set()  # id() of drivers whose start() has run
        self._pending: _Change | None = None
        self._change_pending = asyncio.Event()
        self._build(devices)

    def _build(self, devices: Sequence[PolledDevice]) -> None:
        """(Re)make the groups from ``devices``. Health of a device whose driver and interval stay
        is kept; ``self.health`` is updated in place (the health reporter holds it)."""
        groups: dict[float, _Group] = {}
        seen: set[str] = set()
        kept: dict[str, DeviceHealth] = {}
        previous = {id(driver) for driver in self._drivers}
        for polled in devices:
            device_id = polled.driver.device_id
            if polled.interval <= 0:
                raise ValueError(f"device {device_id!r}: interval must be positive")
            if device_id in seen:
                raise ValueError(f"device {device_id!r} is listed twice")
            seen.add(device_id)
            groups.setdefault(polled.interval, _Group(polled.interval)).devices.append(polled.driver)
            old = self.health.get(device_id)
            same = old is not None and id(polled.driver) in previous and old.interval == polled.interval
            kept[device_id] = (
                old
                if same and old is not None
                else DeviceHealth(device_id, polled.interval, backoff_max=self._backoff_max)
            )
            if polled.report is None:
                self._filters.pop(device_id, None)
            elif not same or device_id not in self._filters:
                self._filters[device_id] = ReportFilter(polled.report)
        for device_id in set(self._filters) - seen:
            del self._filters[device_id]
        self.health.clear()
        self.health.update(kept)
        self._drivers = [polled.driver for polled in devices]
        self._groups = sorted(groups.values(), key=lambda g: g.interval)

    @property
    def next_seq(self) -> int:
        return self._seq

    async def run(self) -> None:
        """Start the drivers, poll until cancelled, then close the drivers. A :meth:`reconfigure`
        pauses the groups for a moment, swaps devices, and polling goes on."""
        try:
            while True:
                start = self.clock.monotonic()
                fresh = [d for d in self._drivers if id(d) not in self._started]
                self._started.update(id(d) for d in fresh)
                await asyncio.gather(*(self._start(driver, start) for driver in fresh))
                try:
                    async with asyncio.TaskGroup() as tasks:
                        for group in self._groups:
                            tasks.create_task(self._run_group(group, start), name=f"poll-every-{group.interval:g}s")
                        tasks.create_task(self._wait_for_change(), name="poll-reconfigure")
                except* _Reconfigure:
                    pass
                await self._apply_change()
        finally:
            await asyncio.shield(self._close_all())

    async def reconfigure(self, devices: Sequence[PolledDevice], *, retire: Sequence[Driver] = ()) -> None:
        """Poll ``devices`` from now on; close the ``retire`` drivers (removed or replaced devices).
        Drivers in both the old and the new list keep running untouched. Returns once applied."""
        if self._pending is not None:
            raise RuntimeError("a reconfiguration is already in progress")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending = _Change(tuple(devices), tuple(retire), done)
        self._change_pending.set()
        await done

    async def _wait_for_change(self) -> None:
        await self._change_pending.wait()
        raise _Reconfigure

    async def _apply_change(self) -> None:
        change, self._pending = self._pending, None
        self._change_pending.clear()
        if change is None:
            return
        try:
            for driver in change.retire:
                self._started.discard(id(driver))
                try:
                    await driver.close()
                except Exception:
                    log.exception("device %s: error while closing its driver", driver.device_id)
            self._build(change.devices)
        except Exception as exc:
            change.done.set_exception(exc)
        else:
            change.done.set_result(None)

    async def poll_now(self, device_ids: set[str] | None = None) -> int:
        """Read ``device_ids`` (every device when None) at once, backed off or not, and emit the
        readings as one message; returns how many devices were read."""
        drivers = [d for d in self._drivers if device_ids is None or d.device_id in device_ids]
        if device_ids is not None and (unknown := device_ids - {d.device_id for d in drivers}):
            raise KeyError(f"unknown device(s): {', '.join(sorted(unknown))}")
        await self.poll_once(drivers, self.clock.monotonic(), force=True)
        return len(drivers)

    async def _close_all(self) -> None:
        for driver in self._drivers:
            try:
                await driver.close()
            except Exception:
                log.exception("device %s: error while closing its driver", driver.device_id)

    async def _start(self, driver: Driver, now: float) -> None:
        try:
            await asyncio.wait_for(driver.start(), timeout=driver.read_deadline)
        except TimeoutError:
            self._failed(driver, DeviceTimeout(driver.device_id, "start did not finish in time"), now)
        except DriverError as exc:
            self._failed(driver, exc, now)
        except Exception as exc:
            log.exception("device %s: driver failed to start", driver.device_id)
            self._failed(driver, DriverError(driver.device_id, f"driver bug: {exc!r}", retryable=True), now)

    async def _run_group(self, group: _Group, start: float) -> None:
        tick = 0
        while True:
            scheduled = start + tick * group.interval
            await self.clock.sleep_until(scheduled)
            await self.poll_once(group.devices, scheduled)
            elapsed_ticks = math.floor((self.clock.monotonic() - start) / group.interval)
            if elapsed_ticks > tick:
                missed = elapsed_ticks - tick
                self.stats.overruns += missed
                log.warning(
                    "poll cycle of every %gs took longer than its interval: skipping %d cycle(s)",
                    group.interval,
                    missed,
                )
            tick = max(tick, elapsed_ticks) + 1

    async def poll_once(self, drivers: Sequence[Driver], scheduled: float, *, force: bool = False) -> list[Telemetry]:
        """One cycle: read every due device (every one with ``force``) concurrently and emit the
        readings; returns the messages sent."""
        due = [d for d in drivers if force or self.health[d.device_id].due(scheduled)]
        results = await asyncio.gather(*(self._read(driver, scheduled) for driver in due))
        readings = [reading for batch in results for reading in batch]
        self.stats.cycles += 1
        if not readings:
            self.stats.empty_cycles += 1
            return []
        return await self._emit(readings)

    async def _read(self, driver: Driver, scheduled: float) -> list[Reading]:
        began = self.clock.monotonic()
        try:
            async with asyncio.timeout(driver.read_deadline):
                readings = await driver.read()
        except TimeoutError:
            error = DeviceTimeout(driver.device_id, f"read took over {driver.read_deadline:g}s")
            self._failed(driver, error, scheduled)
            return []
        except DriverError as exc:
            self._failed(driver, exc, scheduled)
            return []
        except Exception as exc:
            log.exception("device %s: driver raised an unexpected error", driver.device_id)
            self._failed(driver, DriverError(driver.device_id, f"driver bug: {exc!r}", retryable=True), scheduled)
            return []
        finished = self.clock.monotonic()
        health = self.health[driver.device_id]
        failures = health.consecutive_failures
        if health.succeeded(readings, latency=finished - began, at=self.clock.now()):
            log.info("device %s: available again after %d failed attempt(s)", driver.device_id, failures)
        report = self._filters.get(driver.device_id)
        if report is None:
            return readings
        chosen = report.select(readings, finished)
        held = len(readings) - len(chosen)
        health.suppressed_total += held
        self.stats.suppressed += held
        return chosen

    def _failed(self, driver: Driver, error: DriverError, scheduled: float) -> None:
        self.stats.read_failures += 1
        health = self.health[driver.device_id]
        became_unavailable, wait = health.failed(error, scheduled, at=self.clock.now())
        if (report := self._filters.get(driver.device_id)) is not None:
            report.reset()
        kind = "retryable" if error.retryable else "permanent"
        if became_unavailable:
            log.warning(
                "device %s: unavailable: %s (%s); next attempt in %gs", driver.device_id, error.reason, kind, wait
            )
        else:
            log.debug(
                "device %s: still unavailable (%d failures): %s; next attempt in %gs",
                driver.device_id,
                health.consecutive_failures,
                error.reason,
                wait,
            )

    async def _emit(self, readings: list[Reading]) -> list[Telemetry]:
        sent: list[Telemetry] = []
        async with self._emit_lock:
            for first in range(0, len(readings), self._max_readings):
                message = Telemetry(
                    schema=1,
                    gateway=self.gateway_id,
                    boot=self.boot,
                    seq=self._seq,
                    sent_at=self.clock.now(),
                    readings=readings[first : first + self._max_readings],
                )
                self._seq += 1
                await self._sink(message)
                self.stats.messages += 1
                self.stats.readings += len(message.readings)
                sent.append(message)
        return sent
