"""A Modbus bus: one connection that several devices share, one request at a time.

Every device on a serial port (or behind one RTU-over-TCP converter) sends its requests through
the same :class:`ModbusBus`, so requests never collide on the RS-485 line. Requests are served
first come, first served, and each *attempt* waits in the queue on its own: the retries of a
device that does not answer go to the back of the queue, behind the requests of the others,
so a dead device costs the others at most one timeout per attempt, never a whole retry series.
After each answer (or timeout) the line is left silent for the RTU inter-frame gap.

A Modbus TCP device has a bus of its own (its own connection, as before), closed and reopened
after a timeout so that a half-open connection cannot hang it.

A process has one bus per serial port (a serial port can be opened once): :func:`shared_bus`
gives every driver of the same port the same object, kept while any driver holds it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass

from misto.edge.drivers.modbus.client import Endpoint, FailureKind, ModbusClient, RequestFailed, SerialPort
from misto.edge.drivers.modbus.counters import ModbusCounters
from misto.edge.drivers.modbus.operations import Operation
from misto.edge.errors import DeviceConnectionError, DeviceRejected, DeviceTimeout, DriverError

log = logging.getLogger("misto.edge.drivers.modbus")

PERMANENT_EXCEPTION_CODES = frozenset({0x01, 0x02, 0x03})
"""Exception codes that will not change by asking again: the request itself is wrong for this device."""
RETRIED_EXCEPTION_CODES = frozenset({0x05, 0x06})
"""Busy: asking again a moment later is what the device wants."""


def silent_interval(endpoint: Endpoint) -> float:
    """The RTU gap between frames: 3.5 characters of 11 bits, at least 1.75 ms (Modbus over serial
    line 1.02, 2.5.1.1); none on Modbus TCP."""
    if isinstance(endpoint, SerialPort):
        return max(3.5 * 11 / endpoint.baudrate, 0.00175)
    return 0.0005 if endpoint.rtu else 0.0


@dataclass(frozen=True, slots=True)
class Member:
    """A device on the bus and how long one read of it may hold the bus at worst."""

    device_id: str
    worst_read_s: float


class ModbusBus:
    """Requests of every device on one connection, one at a time (see the module)."""

    def __init__(self, endpoint: Endpoint, *, shared: bool) -> None:
        self.endpoint = endpoint
        self.shared = shared
        self.client = ModbusClient(endpoint, name=f"misto-{endpoint.where}")
        self.gap = silent_interval(endpoint)
        self.members: dict[str, Member] = {}
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def where(self) -> str:
        return self.endpoint.where

    def _queue(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop  # FIFO: waiters are served in order
        return self._lock

    def attach(self, member: Member) -> None:
        self.members[member.device_id] = member

    def detach(self, device_id: str) -> None:
        """Leave the bus; the last device out closes the connection."""
        self.members.pop(device_id, None)
        if not self.members:
            self.client.close()

    def wait_budget(self, device_id: str) -> float:
        """How long the requests of the other devices may keep ``device_id`` waiting, at worst."""
        return sum(m.worst_read_s for m in self.members.values() if m.device_id != device_id)

    async def open(self, device_id: str, within: float) -> None:
        """Connect (if not connected); :class:`DeviceConnectionError` naming the device otherwise."""
        async with self._queue():
            await self._connect(device_id, within)

    async def _connect(self, device_id: str, within: float) -> None:
        try:
            await self.client.connect(within)
        except RequestFailed as failed:
            raise DeviceConnectionError(device_id, failed.detail) from None

    async def execute(
        self,
        op: Operation,
        *,
        device_id: str,
        unit: int,
        attempt_s: float,
        attempts: int,
        counters: ModbusCounters,
    ) -> list[int]:
        """Send ``op`` to ``unit`` in up to ``attempts`` attempts (timeouts, CRC errors and busy
        devices are tried again); the registers or bits read. Raises a :class:`DriverError`."""
        what = f"{op.describe()} of unit {unit} at {self.where}"
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                counters.retries += 1
            try:
                return await self._attempt(op, device_id=device_id, unit=unit, attempt_s=attempt_s, counters=counters)
            except RequestFailed as failed:
                last = attempt == attempts
                retry = failed.kind in (FailureKind.NO_ANSWER, FailureKind.CRC, FailureKind.CONNECTION) or (
                    failed.code in RETRIED_EXCEPTION_CODES
                )
                if last or not retry:
                    raise _driver_error(device_id, what, failed, attempts=attempt) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, op: Operation, *, device_id: str, unit: int, attempt_s: float, counters: ModbusCounters
    ) -> list[int]:
        async with self._queue():
            try:
                await self._connect(device_id, attempt_s)
            except DeviceConnectionError as exc:
                counters.connection_errors += 1
                raise RequestFailed(FailureKind.CONNECTION, exc.reason) from None
            counters.requests += 1
            started = time.monotonic()
            try:
                values = await self.client.execute(op, unit=unit, within=attempt_s)
            except RequestFailed as failed:
                _count(counters, failed)
                if failed.kind is FailureKind.NO_ANSWER and not self.shared:
                    self.client.close()  # Modbus TCP: a half-open connection must not hang the device
                raise
            finally:
                if self.gap:
                    await asyncio.sleep(self.gap)
            counters.responses += 1
            counters.last_latency_s = time.monotonic() - started
            return values


def _count(counters: ModbusCounters, failed: RequestFailed) -> None:
    match failed.kind:
        case FailureKind.NO_ANSWER:
            counters.timeouts += 1
        case FailureKind.CRC:
            counters.crc_errors += 1
        case FailureKind.EXCEPTION:
            counters.exceptions[failed.code or 0] += 1
        case FailureKind.CONNECTION:
            counters.connection_errors += 1
        case FailureKind.PROTOCOL:
            counters.timeouts += 1  # an answer that makes no sense is as good as none


def _driver_error(device_id: str, what: str, failed: RequestFailed, *, attempts: int) -> DriverError:
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    reason = f"{what}: {failed.detail}{tries}"
    match failed.kind:
        case FailureKind.EXCEPTION:
            code = failed.code or 0
            return DeviceRejected(device_id, reason, code=code, retryable=code not in PERMANENT_EXCEPTION_CODES)
        case FailureKind.CONNECTION:
            return DeviceConnectionError(device_id, reason)
        case FailureKind.PROTOCOL:
            return DriverError(device_id, reason, retryable=True)
        case _:
            return DeviceTimeout(device_id, reason)


_SHARED: weakref.WeakValueDictionary[str, ModbusBus] = weakref.WeakValueDictionary()
"""Buses by port, while any driver holds one: a serial port is a resource of the whole process."""


class LineMismatch(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def shared_bus(key: str, endpoint: Endpoint) -> ModbusBus:
    """The bus for ``key`` (a serial port, or an RTU-over-TCP converter), made on first use.
    :class:`LineMismatch` if it is already open with other line settings."""
    bus = _SHARED.get(key)
    if bus is None:
        bus = ModbusBus(endpoint, shared=True)
        _SHARED[key] = bus
    elif bus.endpoint != endpoint:
        raise LineMismatch(f"{key} is already used as {bus.where}, not {endpoint.where}")
    return bus
