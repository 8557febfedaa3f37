"""Answering one unit's requests from its simulated device, as a real device does.

* Reading mapped addresses returns the latest values; a read that touches an unmapped address
  (or a table the device does not have) gets exception 02, illegal data address. A partial read
  of a multi-register value is allowed.
* Writes are accepted only where every address written belongs to a writable row (a set point);
  anything else (measurements, text, unmapped addresses) gets exception 02. A written value is
  held by the device from then on (:meth:`SimulatedDevice.write`).
* Bit fields share their register; writing the register sets each bit field from its bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from misto.sim.device import SimulatedDevice
from misto.sim.devices.model import RegisterTable, RegisterType, SimRegister
from misto.sim.encoding import bit_into, bit_of, register_words, text_words, words_value
from misto.sim.modbus.pdu import (
    ExceptionCode,
    Function,
    ModbusRefusal,
    Request,
    parse_request,
    read_response,
    write_response,
)

_TABLE_OF = {
    Function.READ_COILS: RegisterTable.COIL,
    Function.READ_DISCRETE_INPUTS: RegisterTable.DISCRETE_INPUT,
    Function.READ_HOLDING_REGISTERS: RegisterTable.HOLDING,
    Function.READ_INPUT_REGISTERS: RegisterTable.INPUT,
    Function.WRITE_SINGLE_COIL: RegisterTable.COIL,
    Function.WRITE_MULTIPLE_COILS: RegisterTable.COIL,
    Function.WRITE_SINGLE_REGISTER: RegisterTable.HOLDING,
    Function.WRITE_MULTIPLE_REGISTERS: RegisterTable.HOLDING,
}


class UnitResponder:
    """Answers request PDUs for one device. Its words are encoded once per snapshot."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self._seq = -1
        self._values: dict[RegisterTable, dict[int, int]] = {}
        self._rows: dict[tuple[RegisterTable, int], list[SimRegister]] = {}
        for reg in device.model.registers:
            for address in reg.addresses:
                self._rows.setdefault((reg.table, address), []).append(reg)
        self._text: dict[int, int] = {}
        for text in device.model.identity:
            self._text.update(zip(text.addresses, text_words(text), strict=True))

    def values(self, table: RegisterTable) -> dict[int, int]:
        """Address -> word (or bit) of ``table`` for the latest snapshot."""
        snapshot = self.device.snapshot
        if snapshot is None:
            raise ModbusRefusal(ExceptionCode.SERVER_DEVICE_BUSY)  # not measured yet
        if snapshot.seq != self._seq:
            values: dict[RegisterTable, dict[int, int]] = {t: {} for t in RegisterTable}
            values[RegisterTable.HOLDING].update(self._text)
            for reg in self.device.model.registers:
                raw = snapshot.quantized[reg.key].raw
                target = values[reg.table]
                if reg.type is RegisterType.BIT and reg.table.is_bits:
                    target[reg.address] = int(raw)
                elif reg.type is RegisterType.BIT:
                    target[reg.address] = bit_into(target.get(reg.address, 0), reg, int(raw))
                else:
                    target.update(zip(reg.addresses, register_words(reg, raw), strict=True))
            self._values, self._seq = values, snapshot.seq
        return self._values[table]

    def answer(self, pdu: bytes) -> bytes:
        """The response PDU to ``pdu``; :class:`ModbusRefusal` for an exception response."""
        request = parse_request(pdu)
        table = _TABLE_OF[request.function]
        values = self.values(table)
        span = range(request.address, request.address + request.count)
        if request.address + request.count > 0x10000 or any(a not in values for a in span):
            raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_ADDRESS)
        if request.values is None:
            return read_response(request, [values[a] for a in span])
        self._write(table, request, values)
        return write_response(request, pdu)

    def _write(self, table: RegisterTable, request: Request, current: dict[int, int]) -> None:
        assert request.values is not None
        written = dict(zip(range(request.address, request.address + request.count), request.values, strict=True))
        rows = self._rows_at(table, written)
        if any(address in self._text for address in written) or not all(reg.writable for reg in rows):
            raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_ADDRESS)
        raws: dict[SimRegister, int | float] = {}
        for reg in rows:
            if reg.type is RegisterType.BIT:
                word = written[reg.address]
                raws[reg] = word if table.is_bits else bit_of(word, reg)
            else:
                words = [written.get(a, current[a]) for a in reg.addresses]
                raws[reg] = words_value(reg, words)
                if not math.isfinite(raws[reg]):
                    raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_VALUE)  # a set point must be a number
        self.device.write(raws)

    def _rows_at(self, table: RegisterTable, addresses: Iterable[int]) -> list[SimRegister]:
        rows: dict[str, SimRegister] = {}
        for address in addresses:
            for reg in self._rows.get((table, address), ()):
                rows[reg.key] = reg
        return list(rows.values())
