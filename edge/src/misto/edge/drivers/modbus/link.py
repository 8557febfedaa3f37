"""The adapter around pymodbus: one connection to one Modbus server (a device or a TCP gateway in
front of an RS-485 bus), with pymodbus's errors translated into the edge exception tree.

pymodbus's own reconnect loop is switched off (``reconnect_delay=0``): the poll coordinator decides
when to try again, with its own backoff, and :meth:`ModbusLink.read_registers` reconnects on demand.
Each request has ``timeout`` seconds per attempt and ``retries`` extra attempts (pymodbus resends).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse

from misto.edge.errors import DeviceConnectionError, DeviceRejected, DeviceTimeout, DriverError
from misto.edge.registers.spec import Table

log = logging.getLogger("misto.edge.drivers.modbus")

# Exception codes that will not change by asking again: the request itself is wrong for this device.
PERMANENT_EXCEPTION_CODES = frozenset({0x01, 0x02, 0x03})
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


class ModbusLink:
    """One Modbus TCP connection. Not safe for concurrent requests from several tasks: one device's
    driver owns it (for a shared RS-485 bus, issue 3 serialises requests with a lock per bus)."""

    def __init__(self, *, device_id: str, host: str, port: int, timeout: float, retries: int) -> None:
        self.device_id = device_id
        self.host = host
        self.port = port
        self.where = f"{host}:{port}"
        self.timeout = timeout
        self.retries = retries
        self._client: AsyncModbusTcpClient | None = None  # made on connect: pymodbus needs a running loop

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.connected)

    async def connect(self) -> AsyncModbusTcpClient:
        """The connected client, connecting first if needed; raises :class:`DeviceConnectionError`."""
        if self._client is not None and self._client.connected:
            return self._client
        self.close()
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout,
            retries=self.retries,
            reconnect_delay=0,
            name=f"misto-{self.device_id}",
        )
        self._client = client
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as exc:
            self.close()
            raise DeviceConnectionError(self.device_id, f"cannot connect to {self.where}: {exc}") from exc
        if not ok:
            self.close()
            raise DeviceConnectionError(
                self.device_id, f"cannot connect to {self.where} (refused, or no answer within {self.timeout:g}s)"
            )
        return client

    async def read_registers(self, table: Table, address: int, count: int, unit_id: int) -> list[int]:
        """``count`` registers from ``address`` of ``table``; raises a :class:`DriverError`."""
        what = f"{table} registers {address}..{address + count - 1} of unit {unit_id} at {self.where}"
        client = await self.connect()
        read = client.read_input_registers if table is Table.INPUT else client.read_holding_registers
        response = await self._call(read(address, count=count, device_id=unit_id), what)
        registers: list[int] = list(response.registers)
        if len(registers) != count:
            self.close()
            raise DriverError(self.device_id, f"{what}: got {len(registers)} registers", retryable=True)
        return registers

    async def write_registers(self, address: int, values: Sequence[int], unit_id: int) -> None:
        """Write holding registers from ``address`` (function 16); raises a :class:`DriverError`."""
        what = f"write of holding registers {address}..{address + len(values) - 1} of unit {unit_id} at {self.where}"
        client = await self.connect()
        await self._call(client.write_registers(address, list(values), device_id=unit_id), what)

    async def _call(self, request: Any, what: str) -> Any:
        try:
            response = await request
        except ConnectionException as exc:
            self.close()
            raise DeviceConnectionError(self.device_id, f"{what}: connection lost ({exc.string})") from exc
        except ModbusIOException as exc:
            self.close()  # a late answer would be taken for the next request's: start clean
            raise DeviceTimeout(
                self.device_id, f"{what}: no valid answer within {self.timeout:g}s x {self.retries + 1} attempt(s)"
            ) from exc
        except TimeoutError as exc:
            self.close()
            raise DeviceTimeout(self.device_id, f"{what}: timed out") from exc
        except OSError as exc:
            self.close()
            raise DeviceConnectionError(self.device_id, f"{what}: {exc}") from exc
        except ModbusException as exc:
            self.close()
            raise DriverError(self.device_id, f"{what}: {exc.string}", retryable=False) from exc
        if isinstance(response, ExceptionResponse) or response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise DeviceRejected(
                self.device_id,
                f"{what}: exception {code} ({name})",
                code=code,
                retryable=code not in PERMANENT_EXCEPTION_CODES,
            )
        return response

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
