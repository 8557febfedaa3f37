"""The ``modbus_rtu`` and ``modbus_rtu_tcp`` drivers: Modbus RTU devices on a shared bus, a
serial line (RS-485) or a transparent serial-to-TCP converter. Every device on the same port
uses the same :class:`~misto.edge.drivers.modbus.bus.ModbusBus`, so their requests take turns."""

from __future__ import annotations

from misto.edge.clock import Clock
from misto.edge.device_config import ModbusRtuDevice, ModbusRtuOverTcpDevice
from misto.edge.drivers.modbus.bus import LineMismatch, ModbusBus, shared_bus
from misto.edge.drivers.modbus.client import SerialPort, TcpPort
from misto.edge.drivers.modbus.driver import ModbusDriver
from misto.edge.errors import DriverError


class ModbusRtuDriver(ModbusDriver):
    kind = "modbus_rtu"

    def __init__(self, device: ModbusRtuDevice, *, clock: Clock) -> None:
        self.rtu = device
        self._mismatch: str | None = None
        super().__init__(device, clock=clock)

    def make_bus(self) -> ModbusBus:
        line = self.rtu.serial
        endpoint = SerialPort(line.port, line.baudrate, line.bytesize, line.parity, line.stopbits)
        try:
            return shared_bus(self.rtu.bus_key, endpoint)
        except LineMismatch as exc:  # settings validation refuses this; a bus of its own never opens
            self._mismatch = exc.reason
            return ModbusBus(endpoint, shared=True)

    async def start(self) -> None:
        if self._mismatch is not None:
            raise DriverError(self.device_id, f"serial line settings differ: {self._mismatch}", retryable=False)
        await super().start()


class ModbusRtuOverTcpDriver(ModbusDriver):
    kind = "modbus_rtu_tcp"

    def __init__(self, device: ModbusRtuOverTcpDevice, *, clock: Clock) -> None:
        self.rtu_tcp = device
        super().__init__(device, clock=clock)

    def make_bus(self) -> ModbusBus:
        return shared_bus(self.rtu_tcp.bus_key, TcpPort(self.rtu_tcp.host, self.rtu_tcp.port, rtu=True))
