"""A pseudo-terminal standing in for a device's serial port: the simulator writes to the master
side, the agent opens the slave side (``/dev/pts/N``) through a symlink at the path it was given,
as ``socat pty,raw,echo=0,link=PATH`` would make.

The slave is put in raw mode (no echo, no line editing, no CR/LF translation) and kept open by
the simulator, so the terminal survives the agent closing and reopening it. Writes never block:
when nobody reads the port and its buffer is full, the bytes are dropped and counted, as a real
sensor's are when nothing is listening. Bytes the agent writes are read and counted (a streaming
sensor ignores them)."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

from misto.sim.errors import SimError


class PtyError(SimError):
    """A pseudo-terminal cannot be made, or its link cannot be put at the path asked for."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot serve a serial device at {path}: {reason}")


class PtyEndpoint:
    def __init__(self, link: Path) -> None:
        self.link = link
        self.slave_name = ""
        self.bytes_written = 0
        self.bytes_dropped = 0
        self.bytes_received = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> None:
        """Create the terminal and the symlink; :class:`PtyError` if the path is taken by
        something that is not a symlink (a stale symlink from an earlier run is replaced)."""
        if self.link.exists() and not self.link.is_symlink():
            raise PtyError(str(self.link), "the path exists and is not a symlink; not replacing it")
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            os.set_blocking(master, False)
            self.slave_name = os.ttyname(slave)
            self.link.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(self.slave_name)
            temporary.replace(self.link)
        except OSError as exc:
            os.close(master)
            os.close(slave)
            raise PtyError(str(self.link), exc.strerror or str(exc)) from exc
        self._master, self._slave = master, slave
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(master, self._drain)

    def _drain(self) -> None:
        assert self._master is not None
        try:
            self.bytes_received += len(os.read(self._master, 4096))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            pass  # EIO when no slave is open; we keep one open, so only transiently

    def write(self, data: bytes) -> int:
        """Send ``data`` to whoever has the port open; returns the bytes accepted (the rest is dropped)."""
        if self._master is None or not data:
            return 0
        try:
            sent = os.write(self._master, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        self.bytes_written += sent
        self.bytes_dropped += len(data) - sent
        return sent

    def close(self) -> None:
        """Remove the symlink (if it is still ours) and close the terminal. Safe to call twice."""
        master, slave, self._master, self._slave = self._master, self._slave, None, None
        if master is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(master)
        try:
            if self.link.is_symlink() and os.readlink(self.link) == self.slave_name:
                self.link.unlink()
        except OSError:
            pass
        os.close(master)
        if slave is not None:
            os.close(slave)
