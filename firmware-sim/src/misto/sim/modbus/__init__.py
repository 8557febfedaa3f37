"""The simulator's Modbus servers: request handling per unit (:mod:`.responder`), the faults
between a unit and the line (:mod:`.bus`), and the transports: Modbus TCP and RTU over TCP
(:mod:`.tcp`), RTU on a pseudo-terminal or serial device (:mod:`.serial_line`)."""

from misto.sim.modbus.bus import AbsentUnit, Bus, Reply
from misto.sim.modbus.serial_line import SerialLineServer
from misto.sim.modbus.tcp import Framing, TcpServer

__all__ = ["AbsentUnit", "Bus", "Framing", "Reply", "SerialLineServer", "TcpServer"]
