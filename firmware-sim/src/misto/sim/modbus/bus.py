"""The devices served on one endpoint (a TCP port or a serial line), each under its unit id, and
the faults between them and the line: one place decides the fate of every request."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from misto.sim.device import SimulatedDevice
from misto.sim.faults import FaultState
from misto.sim.modbus.pdu import ExceptionCode, ModbusRefusal, exception_response
from misto.sim.modbus.responder import UnitResponder


class AbsentUnit(StrEnum):
    """What a request for a unit nobody serves gets."""

    SILENCE = "silence"
    """As on a serial bus: nobody answers (RTU, and RTU through a transparent converter)."""
    GATEWAY_EXCEPTION = "gateway-exception"
    """As from a Modbus TCP gateway whose serial device is absent: exception 0B."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A response PDU to send, with its CRC ``corrupt`` and ``garbage`` bytes before it (RTU only)."""

    pdu: bytes
    corrupt: bool = False
    garbage: bytes = b""


class Bus:
    """Units on one endpoint. :meth:`reply` answers one request PDU (or stays silent)."""

    def __init__(
        self, units: Mapping[int, tuple[SimulatedDevice, FaultState]], *, absent: AbsentUnit = AbsentUnit.SILENCE
    ) -> None:
        if not units:
            raise ValueError("a bus needs at least one unit")
        self.responders = {unit: UnitResponder(device) for unit, (device, _) in units.items()}
        self.faults = {unit: faults for unit, (_, faults) in units.items()}
        self.absent = absent
        self.stats: Counter[str] = Counter()

    async def reply(self, unit: int, pdu: bytes) -> Reply | None:
        """The reply to ``pdu`` addressed to ``unit``, or ``None`` for silence."""
        self.stats["requests"] += 1
        responder = self.responders.get(unit)
        if responder is None:
            self.stats["absent_unit"] += 1
            if self.absent is AbsentUnit.GATEWAY_EXCEPTION and pdu:
                return Reply(exception_response(pdu[0], ExceptionCode.GATEWAY_TARGET_FAILED))
            return None
        decision = self.faults[unit].decide()
        if decision.silent:
            return None
        if decision.delay:
            await asyncio.sleep(decision.delay)
        function = pdu[0] if pdu else 0
        if decision.exception is not None:
            answer = bytes((function | 0x80, decision.exception))
        else:
            try:
                answer = responder.answer(pdu)
            except ModbusRefusal as refusal:
                answer = exception_response(function, refusal.code)
        return Reply(answer, corrupt=decision.corrupt, garbage=decision.garbage)
