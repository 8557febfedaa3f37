"""The ``modbus_tcp`` driver: a Modbus TCP device (or a Modbus TCP gateway in front of an RS-485
bus) on a connection of its own."""

from __future__ import annotations

from misto.edge.clock import Clock
from misto.edge.device_config import ModbusTcpDevice
from misto.edge.drivers.modbus.bus import ModbusBus
from misto.edge.drivers.modbus.client import TcpPort
from misto.edge.drivers.modbus.driver import ModbusDriver


class ModbusTcpDriver(ModbusDriver):
    kind = "modbus_tcp"

    def __init__(self, device: ModbusTcpDevice, *, clock: Clock) -> None:
        self.tcp = device
        super().__init__(device, clock=clock)

    def make_bus(self) -> ModbusBus:
        return ModbusBus(TcpPort(self.tcp.host, self.tcp.port), shared=False)
