"""The pymodbus adapter: the only module of ``misto.sim`` that imports pymodbus.

It serves :class:`~misto.sim.device.SimulatedDevice` instances over Modbus TCP with the
pymodbus 3.x ``SimDevice``/``SimData`` datastore (the one that replaces the deprecated
``ModbusSequentialDataBlock`` family in pymodbus 4, with protocol addresses used as is, no
offset of one). Each device's tables are separate (``SimDevice`` non-shared mode), so input
register 0 and holding register 0 are different registers, as on real hardware.

Behaviour a client sees, like a real device:

* reading a mapped register returns the latest values, encoded by pymodbus's own
  ``convert_to_registers`` (16-bit words, most significant byte first, word order per row);
* reading an unmapped address, or a table the device does not have, returns exception 02
  (illegal data address); writes are refused the same way (the registers are measurements);
* a request for a unit id nobody serves on that port returns exception 0B (gateway target
  device failed to respond), as a Modbus TCP gateway does for an absent serial device.

Every request goes through :func:`_UnitHandler.__call__`, an ``async`` hook: the place where
issue 3's faults (slow response, dropout) will go. An RTU server over a serial line or pty
is another class here using the same handlers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from typing import Literal

from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from misto.sim.device import SimulatedDevice
from misto.sim.devices.model import RegisterTable, RegisterType, SimRegister, WordOrder
from misto.sim.errors import ServeError

log = logging.getLogger(__name__)

_DATATYPE = ModbusTcpClient.DATATYPE
_DATATYPES: dict[RegisterType, ModbusTcpClient.DATATYPE] = {
    RegisterType.UINT16: _DATATYPE.UINT16,
    RegisterType.INT16: _DATATYPE.INT16,
    RegisterType.UINT32: _DATATYPE.UINT32,
    RegisterType.INT32: _DATATYPE.INT32,
    RegisterType.FLOAT32: _DATATYPE.FLOAT32,
}
_WORD_ORDERS: dict[WordOrder, Literal["big", "little"]] = {WordOrder.BIG: "big", WordOrder.LITTLE: "little"}

# Function codes by table (Modbus application protocol 1.1b3, section 6).
_READ_INPUT = 4
_HOLDING_CODES = frozenset({3, 6, 16, 22, 23})
_BIT_CODES = frozenset({1, 2, 5, 15})

CATCH_ALL_UNIT = 0  # SimDevice id 0 answers for every unit id not served explicitly


def register_words(register: SimRegister, raw: int | float) -> list[int]:
    """The 16-bit words that hold ``raw`` (already quantized) in ``register``."""
    words: list[int] = ModbusTcpClient.convert_to_registers(
        raw, _DATATYPES[register.type], word_order=_WORD_ORDERS[register.word_order]
    )
    return words


class _UnitHandler:
    """Answers requests for one unit id from its device's latest snapshot. Words are encoded
    once per snapshot and reused until the next update."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self._seq = -1
        self._words: dict[RegisterTable, dict[int, int]] = {}

    def words(self, table: RegisterTable) -> dict[int, int] | None:
        snapshot = self.device.snapshot
        if snapshot is None:
            return None
        if snapshot.seq != self._seq:
            words: dict[RegisterTable, dict[int, int]] = {t: {} for t in RegisterTable}
            for reg in self.device.model.registers:
                encoded = register_words(reg, snapshot.quantized[reg.metric].raw)
                words[reg.table].update(zip(reg.addresses, encoded, strict=True))
            self._words, self._seq = words, snapshot.seq
        return self._words[table]

    async def __call__(  # noqa: PLR0917 - the signature pymodbus's SimDevice action calls
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code == _READ_INPUT:
            table = RegisterTable.INPUT
        elif function_code in _HOLDING_CODES:
            table = RegisterTable.HOLDING
        elif function_code in _BIT_CODES:
            return ExcCodes.ILLEGAL_ADDRESS  # no coils or discrete inputs (see _placeholder_bits)
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        if set_values is not None:
            return ExcCodes.ILLEGAL_ADDRESS  # measurements are read-only (also marked readonly)
        words = self.words(table)
        if words is None:
            return ExcCodes.DEVICE_BUSY  # not measured yet
        for addr in range(address, address + count):
            word = words.get(addr)
            if word is not None:
                registers[addr - start_address] = word
        return None


async def _no_such_unit(  # noqa: PLR0917 - the signature pymodbus's SimDevice action calls
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    return ExcCodes.GATEWAY_NO_RESPONSE


def _table_blocks(device: SimulatedDevice, table: RegisterTable) -> list[SimData]:
    blocks = [
        SimData(address=reg.address, values=[0] * reg.words, datatype=DataType.REGISTERS, readonly=True)
        for reg in device.model.registers
        if reg.table is table
    ]
    # SimDevice needs at least one block per table; an invalid register makes the whole
    # table answer "illegal data address".
    return blocks or [SimData(address=0, datatype=DataType.INVALID)]


def _placeholder_bits() -> list[SimData]:
    # SimDevice's non-shared mode needs a (bit) block for coils and discrete inputs too; the
    # simulated devices have none, so requests that reach this block are refused by the handler.
    return [SimData(address=0, values=[False] * 16, datatype=DataType.BITS, readonly=True)]


def _sim_device(unit: int, device: SimulatedDevice) -> SimDevice:
    return SimDevice(
        id=unit,
        simdata=(
            _placeholder_bits(),
            _placeholder_bits(),
            _table_blocks(device, RegisterTable.HOLDING),
            _table_blocks(device, RegisterTable.INPUT),
        ),
        action=_UnitHandler(device).__call__,
    )


def _catch_all() -> SimDevice:
    return SimDevice(
        id=CATCH_ALL_UNIT,
        simdata=[SimData(address=0, count=0x10000, datatype=DataType.REGISTERS)],
        action=_no_such_unit,
    )


def _bind_error(host: str, port: int) -> str:
    """Why binding ``host``:``port`` fails (pymodbus only logs it), found by trying it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(addr)
    except OSError as exc:
        return exc.strerror or str(exc)
    return "the server did not start listening"


class ModbusTcpDeviceServer:
    """One Modbus TCP listening socket answering for one or more unit ids.

    ``port`` 0 lets the OS choose; :attr:`port` is the bound port once :meth:`start` returns.
    """

    def __init__(self, *, host: str, port: int, units: Mapping[int, SimulatedDevice]) -> None:
        if not units:
            raise ValueError("a server needs at least one unit")
        if CATCH_ALL_UNIT in units:
            raise ValueError(f"unit {CATCH_ALL_UNIT} is reserved")
        self.host = host
        self._requested_port = port
        self.units = dict(units)
        self._server: ModbusTcpServer | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has not started")
        return self._port

    async def start(self) -> None:
        devices = [_sim_device(unit, dev) for unit, dev in self.units.items()]
        devices.append(_catch_all())
        server = ModbusTcpServer(devices, address=(self.host, self._requested_port))
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
            reason = await asyncio.to_thread(_bind_error, self.host, self._requested_port)
            raise ServeError(self.host, self._requested_port, reason) from None
        sockets = getattr(server.transport, "sockets", None) or ()
        self._port = sockets[0].getsockname()[1] if sockets else self._requested_port
        self._server = server
        log.info("modbus tcp server on %s:%s, units %s", self.host, self._port, sorted(self.units))

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        listener = server.transport
        await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated
        if isinstance(listener, asyncio.Server):
            await listener.wait_closed()
