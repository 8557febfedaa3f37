"""Modbus RTU on a serial line: a pseudo-terminal the simulator creates (its other end linked at
a path, for a master to open like /dev/ttyUSB0), or an existing serial device (a USB RS-485
adapter, or one end of a ``socat`` pty pair).

Like devices on an RS-485 bus, units answer independently: a slow unit answers late without
holding up the answers of the others (a master that does not wait for it sees the collision a
real bus would give). A gap of silence longer than 3.5 characters ends a frame, as in RTU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from pathlib import Path

from misto.sim.errors import ServeError
from misto.sim.modbus.bus import Bus
from misto.sim.modbus.framing import RtuFrame, RtuRequestReader
from misto.sim.modbus.tcp import rtu_bytes

log = logging.getLogger(__name__)

FRAME_GAP_S = 0.02
"""Silence after which a partial frame is dropped (3.5 characters at 9600 baud is 4 ms; a pty
and a USB adapter deliver in bursts, so the simulator is lenient)."""

_BAUD = {
    1200: termios.B1200,
    2400: termios.B2400,
    4800: termios.B4800,
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}


def _raw(fd: int, baudrate: int | None = None) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)
    if baudrate is not None:
        attrs[4] = attrs[5] = _BAUD[baudrate]
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class SerialLineServer:
    """Serves the units of ``bus`` over RTU on ``path``: with ``create_pty`` a new pseudo-terminal
    whose other end is linked at ``path`` (removed again on close), else the serial device at ``path``."""

    def __init__(self, *, path: Path, bus: Bus, create_pty: bool = True, baudrate: int = 9600) -> None:
        if baudrate not in _BAUD:
            raise ValueError(f"baudrate {baudrate} is not one of {sorted(_BAUD)}")
        self.path = path
        self.bus = bus
        self.create_pty = create_pty
        self.baudrate = baudrate
        self._fd: int | None = None
        self._peer_fd: int | None = None
        self._frames = RtuRequestReader()
        self._last_byte = 0.0
        self._answers: set[asyncio.Task[None]] = set()
        self._linked = False

    @property
    def where(self) -> str:
        return f"{'pty' if self.create_pty else 'serial'}:{self.path}"

    async def start(self) -> None:
        try:
            if self.create_pty:
                self._open_pty()
            else:
                self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                _raw(self._fd, self.baudrate)
        except OSError as exc:
            self._close_fds()
            raise ServeError(str(self.path), 0, exc.strerror or str(exc)) from None
        assert self._fd is not None
        os.set_blocking(self._fd, False)
        asyncio.get_running_loop().add_reader(self._fd, self._readable)
        log.info("modbus rtu on %s, units %s", self.where, sorted(self.bus.responders))

    def _open_pty(self) -> None:
        if self.path.is_symlink():
            self.path.unlink()  # a link left behind by a simulator that was killed
        elif self.path.exists():
            raise FileExistsError(17, f"{self.path} exists and is not a link to a pty")
        master, peer = os.openpty()
        self._fd, self._peer_fd = master, peer  # keeping the peer open: no hang-up between clients
        _raw(peer)
        os.symlink(os.ttyname(peer), self.path)
        self._linked = True

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            log.warning("serial line %s: read failed: %s", self.where, exc)
            return
        now = asyncio.get_running_loop().time()
        if now - self._last_byte > FRAME_GAP_S:
            self._frames.reset()
        self._last_byte = now
        for frame in self._frames.feed(data):
            if not frame.crc_ok:
                self.bus.stats["crc_errors"] += 1
                continue
            task = asyncio.create_task(self._answer(frame), name=f"rtu-answer-{frame.unit}")
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    async def _answer(self, frame: RtuFrame) -> None:
        reply = await self.bus.reply(frame.unit, frame.pdu)
        if reply is None or frame.unit == 0 or self._fd is None:
            return  # silence, or a broadcast (never answered)
        try:
            os.write(self._fd, rtu_bytes(frame.unit, reply))
        except OSError as exc:
            self.bus.stats["write_errors"] += 1
            log.warning("serial line %s: write failed: %s", self.where, exc)

    def _close_fds(self) -> None:
        for fd in (self._fd, self._peer_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._peer_fd = None
        if self._linked:
            self.path.unlink(missing_ok=True)
            self._linked = False

    async def close(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
        for task in list(self._answers):
            task.cancel()
        for task in list(self._answers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close_fds()
