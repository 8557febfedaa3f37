"""The ``modbus_tcp`` driver: reads a register map (a built-in profile or inline rows) from a
Modbus TCP device with as few requests as the read planner allows."""

from __future__ import annotations

from misto.edge.clock import Clock
from misto.edge.device_config import ModbusTcpDevice
from misto.edge.drivers.base import Driver
from misto.edge.drivers.modbus.link import ModbusLink
from misto.edge.drivers.values import ValueGate
from misto.edge.registers.decoder import decode
from misto.edge.registers.planner import ReadRequest, plan_reads
from misto.edge.registers.spec import RegisterSpec
from misto.protocol import Reading


class ModbusTcpDriver(Driver):
    kind = "modbus_tcp"

    def __init__(self, device: ModbusTcpDevice, *, clock: Clock) -> None:
        super().__init__(device, clock=clock)
        self.config = device
        self.specs: tuple[RegisterSpec, ...] = device.specs()
        self.plan: tuple[ReadRequest, ...] = tuple(
            plan_reads(self.specs, max_registers=device.max_read_registers, max_gap=device.max_read_gap)
        )
        self.gate = ValueGate(device.id)
        self._link = ModbusLink(
            device_id=device.id, host=device.host, port=device.port, timeout=device.timeout, retries=device.retries
        )

    @property
    def read_deadline(self) -> float:
        per_request = self.config.timeout * (self.config.retries + 1)
        return self.config.timeout + per_request * len(self.plan) + 1.0

    async def start(self) -> None:
        await self._link.connect()

    async def read(self) -> list[Reading]:
        readings: list[Reading] = []
        for request in self.plan:
            registers = await self._link.read_registers(
                request.table, request.address, request.count, self.config.unit_id
            )
            ts = self.clock.now()
            for spec in request.specs:
                value = decode(request.registers_of(spec, registers), spec)
                reading = self.gate.reading(spec.metric, spec.unit, value, ts)
                if reading is not None:
                    readings.append(reading)
        return readings

    async def close(self) -> None:
        self._link.close()
