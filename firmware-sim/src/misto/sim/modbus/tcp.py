"""Modbus over TCP: MBAP framing (Modbus TCP) or RTU frames through a transparent serial-to-TCP
converter (RTU over TCP). Requests of one connection are answered in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from enum import StrEnum

from misto.sim.errors import ServeError
from misto.sim.modbus.bus import Bus, Reply
from misto.sim.modbus.framing import MBAP_HEADER, MbapHeader, RtuRequestReader, mbap_frame, rtu_frame

log = logging.getLogger(__name__)


class Framing(StrEnum):
    MBAP = "mbap"
    RTU = "rtu"


def rtu_bytes(unit: int, reply: Reply) -> bytes:
    """The bytes of an RTU reply, with its faults: garbage before it, a wrong CRC."""
    frame = bytearray(rtu_frame(unit, reply.pdu))
    if reply.corrupt:
        frame[-1] ^= 0xFF
    return reply.garbage + bytes(frame)


class TcpServer:
    """One listening socket for the units of ``bus``. ``port`` 0 lets the OS choose; :attr:`port`
    is the bound port once :meth:`start` returns."""

    def __init__(self, *, host: str, port: int, bus: Bus, framing: Framing = Framing.MBAP) -> None:
        self.host = host
        self._requested_port = port
        self.bus = bus
        self.framing = framing
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has not started")
        return self._port

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self._requested_port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ServeError(self.host, self._requested_port, reason) from None
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("modbus %s server on %s, units %s", self.framing, self.where, sorted(self.bus.responders))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if self.framing is Framing.MBAP:
                await self._serve_mbap(reader, writer)
            else:
                await self._serve_rtu(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except asyncio.CancelledError:
            # Only close() cancels a connection: end normally, for asyncio logs a cancelled
            # connection handler as an error (Python 3.11 streams).
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve_mbap(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = MbapHeader.parse(await reader.readexactly(MBAP_HEADER))
            if header.protocol != 0 or not 2 <= header.length <= 254:
                self.bus.stats["bad_frames"] += 1
                return  # not Modbus: drop the connection, as devices do
            pdu = await reader.readexactly(header.length - 1)
            reply = await self.bus.reply(header.unit, pdu)
            if reply is not None:
                writer.write(mbap_frame(header.transaction, header.unit, reply.pdu))
                await writer.drain()

    async def _serve_rtu(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = RtuRequestReader()
        while data := await reader.read(512):
            for frame in frames.feed(data):
                if not frame.crc_ok:
                    self.bus.stats["crc_errors"] += 1
                    continue
                reply = await self.bus.reply(frame.unit, frame.pdu)
                if reply is not None and frame.unit != 0:
                    writer.write(rtu_bytes(frame.unit, reply))
                    await writer.drain()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.wait_closed()
