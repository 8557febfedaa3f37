"""The ``camera`` driver: fetches frames at ``frame_rate``, counts people and vehicles crossing
the counting line on the gateway, and publishes only numbers. Each poll returns, for the period
since the previous poll:

- ``peopleCount`` and ``vehicleCount``: crossings of the line, both directions together;
- ``occupancy``: the fraction of the period's frames in which at least one object was present
  (the FIWARE sense: fraction of the time the scene was occupied), rounded to 4 decimal places;

stamped with the time of the period's last frame. Frames live only in memory while they are
counted (and in the background model, a blurred average): they are never logged, stored or sent.

A background task fetches and counts frames (the counting in a worker thread, so the event loop
stays free). Fetch failures are counted by kind and retried with backoff; a poll that finds no
frame counted since the previous one fails with the last error (the device is unavailable), and
the crossings counted meanwhile are kept for the next good poll. While the background model
warms up (the first frames, or after a disturbance) a poll returns nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from misto.edge.backoff import Backoff
from misto.edge.clock import Clock
from misto.edge.device_config import CameraDevice
from misto.edge.drivers.base import Driver
from misto.edge.drivers.camera.fetch import FrameSource
from misto.edge.drivers.camera.pgm import FrameFormatError, decode_pgm
from misto.edge.drivers.camera.pipeline import FrameCounter, FrameResult
from misto.edge.drivers.camera.tracker import Kind
from misto.edge.drivers.values import ValueGate
from misto.edge.errors import DeviceConnectionError, DeviceRejected, DeviceTimeout, DriverError
from misto.protocol import Reading

log = logging.getLogger("misto.edge.drivers.camera")

MAX_BACKOFF = 30.0
FRAME_TIME_HEADER = "x-frame-time"
"""Optional header: the frame's capture time in seconds (any origin), used for motion when present."""


@dataclass(slots=True)
class Period:
    """What was counted since the previous poll."""

    frames: int = 0
    counted_frames: int = 0
    occupied_frames: int = 0
    people: int = 0
    vehicles: int = 0
    last_frame_at: datetime | None = None


class CameraDriver(Driver):
    kind = "camera"

    def __init__(self, device: CameraDevice, *, clock: Clock) -> None:
        super().__init__(device, clock=clock)
        self.config = device
        self.gate = ValueGate(device.id)
        self.source = FrameSource(device_id=device.id, url=device.url, timeout=device.timeout)
        self.counter = FrameCounter(
            line=device.line,
            threshold=device.threshold,
            min_area=device.min_area,
            vehicle_min_area=device.vehicle_min_area,
            learning_rate=device.learning_rate,
        )
        self.crossings: Counter[tuple[str, str]] = Counter()
        """Every crossing since start, by (kind, direction): for status and tests."""
        self.errors: Counter[str] = Counter()
        """Failed frames by kind: timeout, connection, http, malformed, bad_frame."""
        self.frames_total = 0
        self.present = 0
        """Objects present in the latest counted frame."""
        self._period = Period()
        self._last_error: DriverError | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._backoff = Backoff(initial=1 / device.frame_rate, maximum=max(MAX_BACKOFF, 1 / device.frame_rate))
        self._last_frame_time: float | None = None
        self._stamp_offset = 0.0

    @property
    def read_deadline(self) -> float:
        return self.config.timeout + 2.0

    def health_counters(self) -> dict[str, int]:
        """For gateway health: the same as :meth:`counters`."""
        return self.counters()

    def counters(self) -> dict[str, int]:
        """Frames counted, failures by kind and crossings by kind and direction, since start."""
        out = {"frames": self.frames_total, "counter_resets": self.counter.resets}
        out.update({f"errors_{k}": v for k, v in sorted(self.errors.items())})
        out.update({f"{kind}_{direction}": v for (kind, direction), v in sorted(self.crossings.items())})
        return out

    async def start(self) -> None:
        self._ensure_running()
        try:
            async with asyncio.timeout(self.config.timeout + 1.0):
                await self._first_attempt.wait()
        except TimeoutError:
            raise DeviceTimeout(self.device_id, "no answer to the first frame request") from None
        if self.frames_total == 0 and self._last_error is not None:
            raise self._last_error

    def _ensure_running(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self._task is not None and not self._task.cancelled() and self._task.exception() is not None:
            log.error("device %s: frame loop failed; restarting it", self.device_id, exc_info=self._task.exception())
        self._task = asyncio.create_task(self._run(), name=f"camera-{self.device_id}")

    async def _run(self) -> None:
        period = 1 / self.config.frame_rate
        due = self.clock.monotonic()
        while True:
            wait = period
            try:
                await self._one_frame()
                self._backoff.reset()
            except FrameFormatError as exc:
                self._failed(DriverError(self.device_id, f"GET {self.config.url}: {exc}", retryable=True), "bad_frame")
                wait = max(period, self._backoff.next_delay())
            except DriverError as exc:
                self._failed(exc, _error_kind(exc))
                wait = max(period, self._backoff.next_delay())
            finally:
                self._first_attempt.set()
            due = max(due + wait, self.clock.monotonic())
            await self.clock.sleep_until(due)

    async def _one_frame(self) -> None:
        fetched = await self.source.fetch()
        taken = self._frame_clock(fetched.headers.get(FRAME_TIME_HEADER))
        result = await asyncio.to_thread(self._count, fetched.body, taken)
        self._add(result)

    def _frame_clock(self, stamp: str | None) -> float:
        """When the frame was taken, in seconds for motion: the camera's own capture time if it
        sends one (and it moves forward), else when the frame arrived."""
        taken = self.clock.monotonic()
        if stamp is not None:
            try:
                stamped = float(stamp)
            except ValueError:
                stamped = math.nan
            if math.isfinite(stamped):
                stamped += self._stamp_offset
                if self._last_frame_time is not None and stamped <= self._last_frame_time:
                    # The camera's clock went back (it restarted): continue from where it was.
                    step = self._last_frame_time + 1 / self.config.frame_rate - stamped
                    self._stamp_offset += step
                    stamped += step
                self._last_frame_time = stamped
                return stamped
        return taken

    def _count(self, body: bytes, taken: float) -> FrameResult:
        return self.counter.process(decode_pgm(body), taken)

    def _add(self, result: FrameResult) -> None:
        if self._last_error is not None:
            log.info("device %s: frames again after: %s", self.device_id, self._last_error.reason)
            self._last_error = None
        self.frames_total += 1
        period = self._period
        period.frames += 1
        period.last_frame_at = self.clock.now()
        if not result.counted:
            return
        period.counted_frames += 1
        self.present = result.present
        if result.present:
            period.occupied_frames += 1
        for crossing in result.crossings:
            self.crossings[(crossing.kind.value, crossing.direction.value)] += 1
            if crossing.kind is Kind.VEHICLE:
                period.vehicles += 1
            else:
                period.people += 1

    def _failed(self, error: DriverError, kind: str) -> None:
        self.errors[kind] += 1
        if self._last_error is None:
            log.warning("device %s: frame failed: %s (retrying with backoff)", self.device_id, error.reason)
        self._last_error = error

    async def read(self) -> list[Reading]:
        self._ensure_running()
        period = self._period
        if period.frames == 0:
            if self._last_error is not None:
                raise self._last_error
            raise DeviceTimeout(self.device_id, f"no frame from {self.config.url} since the previous poll")
        if period.counted_frames == 0:
            self._period = Period()
            return []  # warming up: nothing measured yet
        self._period = Period()
        at = period.last_frame_at
        assert at is not None
        values = {
            "peopleCount": float(period.people),
            "vehicleCount": float(period.vehicles),
            "occupancy": round(period.occupied_frames / period.counted_frames, 4),
        }
        readings = [self.gate.reading(metric, "1", value, at) for metric, value in values.items()]
        return [r for r in readings if r is not None]

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise


def _error_kind(error: DriverError) -> str:
    if isinstance(error, DeviceTimeout):
        return "timeout"
    if isinstance(error, DeviceConnectionError):
        return "connection"
    if isinstance(error, DeviceRejected):
        return "http"
    return "malformed"
