"""The adapter around pyserial: one serial port, opened and configured by pyserial (non-blocking)
and read by the event loop (``loop.add_reader`` on its file descriptor, which is what
pyserial-asyncio does on POSIX), so no thread is needed. Bytes go to ``on_data`` as they arrive;
a port that fails (unplugged USB adapter, closed pseudo-terminal) is closed and reported once to
``on_lost``. pyserial's errors are translated into the edge exception tree here."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable

import serial

from misto.edge.device_config import SerialLine
from misto.edge.errors import DeviceConnectionError

log = logging.getLogger("misto.edge.drivers.serial_line")

READ_CHUNK = 4096


class SerialPort:
    """A serial port read as a stream. Open it with :meth:`open` (inside a running event loop)."""

    def __init__(
        self,
        *,
        device_id: str,
        line: SerialLine,
        on_data: Callable[[bytes], None],
        on_lost: Callable[[DeviceConnectionError], None],
    ) -> None:
        self.device_id = device_id
        self.line = line
        self._on_data = on_data
        self._on_lost = on_lost
        self._serial: serial.Serial | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.opened_total = 0
        self.lost_total = 0

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        """Open and configure the port (exclusively, input buffer flushed) and start reading it.
        Raises :class:`DeviceConnectionError` naming the port."""
        if self._serial is not None:
            return
        line = self.line
        try:
            port = serial.Serial(
                port=line.port,
                baudrate=line.baudrate,
                bytesize=line.bytesize,
                parity=line.parity,
                stopbits=line.stopbits,
                timeout=0,
                exclusive=True,  # a second reader would steal bytes from the first
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceConnectionError(self.device_id, f"cannot open serial port {line.port}: {exc}") from exc
        self._loop = asyncio.get_running_loop()
        self._serial = port
        self._loop.add_reader(port.fileno(), self._readable)
        self.opened_total += 1
        log.debug("device %s: opened %s at %d baud", self.device_id, line.port, line.baudrate)

    def _readable(self) -> None:
        port = self._serial
        if port is None:
            return
        try:
            data = os.read(port.fileno(), READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            # EIO: the other end of a pseudo-terminal closed, or a USB adapter was unplugged.
            reason = errno.errorcode.get(exc.errno or 0, "error") + f" ({exc.strerror})"
            self._lose(f"serial port {self.line.port} failed: {reason}")
            return
        if not data:
            self._lose(f"serial port {self.line.port} reached end of file (device unplugged?)")
            return
        self._on_data(data)

    def _lose(self, reason: str) -> None:
        self.lost_total += 1
        self.close()
        self._on_lost(DeviceConnectionError(self.device_id, reason))

    def close(self) -> None:
        """Stop reading and close the port. Safe to call more than once."""
        port, self._serial = self._serial, None
        if port is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(port.fileno())
        try:
            port.close()
        except (serial.SerialException, OSError) as exc:
            log.debug("device %s: closing %s: %s", self.device_id, self.line.port, exc)
