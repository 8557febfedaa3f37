"""The ``sds011`` and ``ascii_lines`` drivers: sensors that stream measurements on their own
serial line, listened to all the time.

The port is read by the event loop as bytes arrive; each complete measurement (a frame, a line)
is stamped with the UTC time it was received and kept until the next poll (at most
:data:`MAX_PENDING`; older ones are dropped and counted). A poll returns one reading per metric:

- ``aggregate: latest`` (default): the last measurement received, with its own time;
- ``aggregate: mean``: the mean of the measurements received since the previous poll (rounded to
  4 decimal places), stamped with the time of the last of them.

A poll with nothing received since the previous one waits up to ``timeout`` for a measurement,
then fails with :class:`~misto.edge.errors.DeviceTimeout` (the device is silent: no power,
unplugged, asleep). A port that fails is closed, the poll fails with
:class:`~misto.edge.errors.DeviceConnectionError`, and the next poll reopens it. Bad input is
never fatal: the parsers resynchronise and count it (see :meth:`SerialStreamDriver.counters`),
and a summary is logged at most once a minute while errors keep coming.
"""

from __future__ import annotations

import asyncio
import logging
import math
from abc import abstractmethod
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from misto.edge.clock import Clock
from misto.edge.device_config import AsciiLinesDevice, Sds011Device
from misto.edge.device_config.serial import Aggregate, SerialStreamDevice
from misto.edge.drivers.base import Driver
from misto.edge.drivers.serial_line.ascii_lines import LineParser
from misto.edge.drivers.serial_line.port import SerialPort
from misto.edge.drivers.serial_line.sds011 import Sds011Parser
from misto.edge.drivers.values import ValueGate
from misto.edge.errors import DeviceConnectionError, DeviceTimeout
from misto.protocol import Reading, vocabulary

log = logging.getLogger("misto.edge.drivers.serial_line")

MAX_PENDING = 3600
"""Measurements kept between two polls (an hour of a sensor reporting every second)."""
ERROR_LOG_INTERVAL = 60.0
MEAN_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    values: Mapping[str, float]


def aggregate(samples: Sequence[Sample], metrics: Iterable[str], how: Aggregate) -> dict[str, tuple[float, datetime]]:
    """Per metric (in ``metrics`` order), the value for a poll and the time it is stamped with:
    the latest sample having the metric, or the mean of all of them (stamped with the latest)."""
    out: dict[str, tuple[float, datetime]] = {}
    for metric in metrics:
        having = [s for s in samples if metric in s.values]
        if not having:
            continue
        if how == "mean":
            value = round(math.fsum(s.values[metric] for s in having) / len(having), MEAN_DECIMALS)
        else:
            value = having[-1].values[metric]
        out[metric] = (value, having[-1].at)
    return out


class ParserCounters(Protocol):
    def errors(self) -> int:
        """Bad input of every kind, together."""
        ...

    def as_dict(self) -> dict[str, int]: ...


class StreamParser(Protocol):
    """What the drivers need of a parser (:class:`Sds011Parser`, :class:`LineParser`)."""

    @property
    def counters(self) -> ParserCounters: ...

    def reset(self) -> None: ...


class SerialStreamDriver(Driver):
    """A driver for a sensor that streams measurements; subclasses bring the parser and turn
    what it finds into ``{metric: value}`` (:meth:`_parse`)."""

    def __init__(
        self,
        device: Sds011Device | AsciiLinesDevice,
        *,
        clock: Clock,
        units: Mapping[str, str],
        parser: StreamParser,
    ) -> None:
        super().__init__(device, clock=clock)
        self.config: SerialStreamDevice = device
        self.units = dict(units)
        self.parser = parser
        self.gate = ValueGate(device.id)
        self.samples_dropped = 0
        self._pending: deque[Sample] = deque()
        self._arrived = asyncio.Event()
        self._lost: DeviceConnectionError | None = None
        self._port = SerialPort(device_id=device.id, line=device.serial, on_data=self._on_data, on_lost=self._on_lost)
        self._errors_logged = 0
        self._error_log_at = -math.inf

    @abstractmethod
    def _parse(self, data: bytes, at: float) -> list[Mapping[str, float]]:
        """The measurements completed by ``data`` (arrived at monotonic time ``at``)."""

    @property
    def read_deadline(self) -> float:
        return self.config.timeout + 2.0

    def health_counters(self) -> dict[str, int]:
        """For gateway health: the same as :meth:`counters`."""
        return self.counters()

    def counters(self) -> dict[str, int]:
        """Every counter of this device: the parser's (good measurements, each kind of bad input),
        port opens and losses, and measurements dropped because nobody polled for too long."""
        return {
            **self.parser.counters.as_dict(),
            "port_opened": self._port.opened_total,
            "port_lost": self._port.lost_total,
            "samples_dropped": self.samples_dropped,
            "values_rejected": self.gate.rejected_total,
        }

    async def start(self) -> None:
        self._open()

    def _open(self) -> None:
        self._lost = None
        self.parser.reset()
        self._port.open()

    def _on_data(self, data: bytes) -> None:
        mono = self.clock.monotonic()
        measurements = self._parse(data, mono)
        if measurements:
            now = self.clock.now()
            for values in measurements:
                if len(self._pending) >= MAX_PENDING:
                    self._pending.popleft()
                    self.samples_dropped += 1
                self._pending.append(Sample(now, values))
            self._arrived.set()
        self._log_errors(mono)

    def _on_lost(self, error: DeviceConnectionError) -> None:
        self._lost = error
        self._arrived.set()

    def _log_errors(self, now: float) -> None:
        errors = self.parser.counters.errors()
        if errors > self._errors_logged and now - self._error_log_at >= ERROR_LOG_INTERVAL:
            self._errors_logged = errors
            self._error_log_at = now
            summary = ", ".join(f"{k} {v}" for k, v in self.counters().items())
            log.warning("device %s: bad input skipped and resynchronised (totals: %s)", self.device_id, summary)

    async def read(self) -> list[Reading]:
        if not self._port.is_open:
            self._open()
        if not self._pending:
            self._arrived.clear()
            try:
                async with asyncio.timeout(self.config.timeout):
                    await self._arrived.wait()
            except TimeoutError:
                raise DeviceTimeout(
                    self.device_id,
                    f"nothing received on {self.config.serial.port} for {self.config.timeout:g}s "
                    "(no power, unplugged, or not in reporting mode?)",
                ) from None
        if not self._pending:
            assert self._lost is not None  # woken without data: the port failed
            raise self._lost
        samples = list(self._pending)
        self._pending.clear()
        return self._readings(samples)

    def _readings(self, samples: Sequence[Sample]) -> list[Reading]:
        readings: list[Reading] = []
        for metric, (value, at) in aggregate(samples, self.units, self.config.aggregate).items():
            reading = self.gate.reading(metric, self.units[metric], value, at)
            if reading is not None:
                readings.append(reading)
        return readings

    async def close(self) -> None:
        self._port.close()


class Sds011Driver(SerialStreamDriver):
    kind = "sds011"

    def __init__(self, device: Sds011Device, *, clock: Clock) -> None:
        self.parser: Sds011Parser = Sds011Parser()
        units = {m: vocabulary.METRICS[m].unit for m in ("pm25", "pm10")}
        super().__init__(device, clock=clock, units=units, parser=self.parser)
        self.sensor_id: int | None = None
        """The id in the last frame received (printed on the sensor's label)."""

    def _parse(self, data: bytes, at: float) -> list[Mapping[str, float]]:
        frames = self.parser.feed(data, at)
        if frames:
            self.sensor_id = frames[-1].sensor_id
        return [{"pm25": f.pm25, "pm10": f.pm10} for f in frames]


class AsciiLinesDriver(SerialStreamDriver):
    kind = "ascii_lines"

    def __init__(self, device: AsciiLinesDevice, *, clock: Clock) -> None:
        fields = device.line_fields()
        self.parser: LineParser = LineParser(pattern=device.pattern, fields=fields, max_length=device.max_line_length)
        super().__init__(device, clock=clock, units={f.metric: f.resolved_unit for f in fields}, parser=self.parser)

    def _parse(self, data: bytes, at: float) -> list[Mapping[str, float]]:
        return list(self.parser.feed(data, at))
