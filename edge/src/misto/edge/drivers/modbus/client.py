"""The adapter around pymodbus: one connection (a TCP socket, or a serial port) that sends one
request at a time, with pymodbus's errors and answers translated into :class:`RequestFailed`.

pymodbus's own retries and reconnect loop are switched off: the bus (:mod:`.bus`) decides when to
try again, with its own timeouts per device, so one slow device does not change another's. Each
request gets its device's timeout; a frame with a wrong CRC ends the attempt at once (pymodbus
would drop the frame silently and wait out the timeout), counted as a CRC error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerRTU, FramerType
from pymodbus.pdu import ExceptionResponse

from misto.edge.drivers.modbus.operations import Operation, Read, WriteCoils, WriteRegisters
from misto.edge.registers.spec import Table

LIBRARY_TIMEOUT = 60.0
"""pymodbus's own timeout, never reached: every connect and request is bounded by ours first."""

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge (busy with a long operation)",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}


class FailureKind(StrEnum):
    NO_ANSWER = "no answer"
    CRC = "CRC error"
    EXCEPTION = "exception response"
    CONNECTION = "connection"
    PROTOCOL = "protocol error"


class RequestFailed(Exception):
    """One attempt failed. ``code`` is the Modbus exception code of an exception response."""

    def __init__(self, kind: FailureKind, detail: str, *, code: int | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.code = code
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class SerialPort:
    """A serial line: RTU frames on ``port``."""

    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    @property
    def where(self) -> str:
        return f"{self.port} ({self.baudrate} {self.bytesize}{self.parity}{self.stopbits})"


@dataclass(frozen=True, slots=True)
class TcpPort:
    """A TCP connection: Modbus TCP (MBAP frames), or RTU frames through a transparent converter."""

    host: str
    port: int
    rtu: bool = False

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" + (" (RTU over TCP)" if self.rtu else "")


Endpoint = SerialPort | TcpPort


class _CountingRtuFramer(FramerRTU):
    """pymodbus's RTU framer, telling us about frames it drops for a wrong CRC (its ``decode``
    consumes the whole buffer and returns no frame only in that case)."""

    def __init__(self, decoder: Any, on_crc_error: Callable[[], None]) -> None:
        super().__init__(decoder)
        self._on_crc_error = on_crc_error

    def decode(self, data: bytes) -> tuple[int, int, int, bytes]:
        used, dev_id, tid, frame = super().decode(data)
        if used and not frame:
            self._on_crc_error()
        return used, dev_id, tid, frame


def _serial_problem(port: str) -> str | None:
    """Why ``port`` cannot be opened, if we can tell before trying (pymodbus only logs it)."""
    if not os.path.exists(port):
        return f"serial port {port} does not exist (is the adapter plugged in? see /dev/serial/by-id/)"
    if not os.access(port, os.R_OK | os.W_OK):
        return f"no permission to open {port} (add the agent's user to the dialout group)"
    return None


class ModbusClient:
    """One connection to ``endpoint``. Not for concurrent use: the bus sends one request at a time."""

    def __init__(self, endpoint: Endpoint, *, name: str) -> None:
        self.endpoint = endpoint
        self.name = name
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._crc = asyncio.Event()

    @property
    def where(self) -> str:
        return self.endpoint.where

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.connected)

    def _make(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        common: dict[str, Any] = {"timeout": LIBRARY_TIMEOUT, "retries": 0, "reconnect_delay": 0, "name": self.name}
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if isinstance(self.endpoint, SerialPort):
            line = self.endpoint
            client = AsyncModbusSerialClient(
                line.port,
                framer=FramerType.RTU,
                baudrate=line.baudrate,
                bytesize=line.bytesize,
                parity=line.parity,
                stopbits=line.stopbits,
                **common,
            )
        else:
            framer = FramerType.RTU if self.endpoint.rtu else FramerType.SOCKET
            client = AsyncModbusTcpClient(self.endpoint.host, port=self.endpoint.port, framer=framer, **common)
        if isinstance(client.ctx.framer, FramerRTU):
            client.ctx.framer = _CountingRtuFramer(client.ctx.framer.decoder, self._crc.set)
        return client

    async def connect(self, within: float) -> None:
        """Open the connection if it is not open; :class:`RequestFailed` (connection) otherwise."""
        if self.connected:
            return
        self.close()
        if isinstance(self.endpoint, SerialPort) and (problem := _serial_problem(self.endpoint.port)):
            raise RequestFailed(FailureKind.CONNECTION, problem)
        client = self._make()
        self._client = client
        try:
            ok = await asyncio.wait_for(client.connect(), within)
        except (OSError, ModbusException, TimeoutError) as exc:
            self.close()
            raise RequestFailed(
                FailureKind.CONNECTION, f"cannot connect to {self.where}: {exc or 'timed out'}"
            ) from exc
        if not ok:
            self.close()
            why = (
                "is another program (a running agent?) using it?"
                if isinstance(self.endpoint, SerialPort)
                else f"refused, or no answer within {within:g}s"
            )
            raise RequestFailed(FailureKind.CONNECTION, f"cannot connect to {self.where} ({why})")

    async def execute(self, op: Operation, *, unit: int, within: float) -> list[int]:
        """Send ``op`` to ``unit`` and return the registers (or bits, as 0/1) it read, or ``[]`` for
        a write. One attempt of at most ``within`` seconds; :class:`RequestFailed` otherwise."""
        client = self._client
        if client is None or not client.connected:
            raise RequestFailed(FailureKind.CONNECTION, f"not connected to {self.where}")
        if not self._crc_possible:
            return await self._execute_plain(client, op, unit, within)
        self._crc.clear()
        request = asyncio.ensure_future(self._send(client, op, unit))
        crc_error = asyncio.ensure_future(self._crc.wait())
        try:
            done, _ = await asyncio.wait({request, crc_error}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            crc_error.cancel()
            if not request.done():
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError, ModbusException, OSError):
                    await request
        if request not in done:
            if crc_error in done:
                raise RequestFailed(FailureKind.CRC, "answer with a wrong CRC (noise on the line?)")
            raise RequestFailed(FailureKind.NO_ANSWER, f"no answer within {within:g}s")
        return self._result(op, request)

    async def _execute_plain(
        self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, op: Operation, unit: int, within: float
    ) -> list[int]:
        """One attempt on a connection without CRCs (Modbus TCP): no watcher task, one timer."""
        request = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(within):
                request.set_result(await self._send(client, op, unit))
        except TimeoutError:
            raise RequestFailed(FailureKind.NO_ANSWER, f"no answer within {within:g}s") from None
        except (ModbusException, OSError) as exc:
            request.set_exception(exc)
        return self._result(op, request)

    @property
    def _crc_possible(self) -> bool:
        return self._client is not None and isinstance(self._client.ctx.framer, FramerRTU)

    @staticmethod
    async def _send(  # noqa: PLR0911 - one request per operation
        client: AsyncModbusTcpClient | AsyncModbusSerialClient, op: Operation, unit: int
    ) -> Any:
        match op:
            case Read(table=Table.HOLDING):
                return await client.read_holding_registers(op.address, count=op.count, device_id=unit)
            case Read(table=Table.INPUT):
                return await client.read_input_registers(op.address, count=op.count, device_id=unit)
            case Read(table=Table.COIL):
                return await client.read_coils(op.address, count=op.count, device_id=unit)
            case Read():
                return await client.read_discrete_inputs(op.address, count=op.count, device_id=unit)
            case WriteRegisters(words=(word,)):
                return await client.write_register(op.address, word, device_id=unit)
            case WriteRegisters():
                return await client.write_registers(op.address, list(op.words), device_id=unit)
            case WriteCoils(bits=(bit,)):
                return await client.write_coil(op.address, bool(bit), device_id=unit)
            case WriteCoils():
                return await client.write_coils(op.address, [bool(b) for b in op.bits], device_id=unit)

    def _result(self, op: Operation, request: asyncio.Future[Any]) -> list[int]:
        try:
            response = request.result()
        except ConnectionException as exc:
            self.close()
            raise RequestFailed(FailureKind.CONNECTION, f"connection to {self.where} lost ({exc.string})") from exc
        except ModbusIOException as exc:
            raise RequestFailed(FailureKind.NO_ANSWER, f"no valid answer ({exc.string})") from exc
        except OSError as exc:
            self.close()
            raise RequestFailed(FailureKind.CONNECTION, f"{self.where}: {exc}") from exc
        except ModbusException as exc:
            raise RequestFailed(FailureKind.PROTOCOL, exc.string) from exc
        if isinstance(response, ExceptionResponse) or response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise RequestFailed(FailureKind.EXCEPTION, f"exception {code} ({name})", code=code)
        if not isinstance(op, Read):
            return []
        values = [int(b) for b in response.bits[: op.count]] if op.table.is_bits else list(response.registers)
        if len(values) != op.count:
            raise RequestFailed(FailureKind.PROTOCOL, f"asked for {op.count}, got {len(values)}")
        return values

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
