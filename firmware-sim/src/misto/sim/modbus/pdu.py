"""Modbus application PDUs as a server sees them: the requests it parses and the responses it
builds (Modbus Application Protocol 1.1b3, sections 6 and 7). Pure functions on bytes; framing
(MBAP for TCP, address + CRC for RTU) is :mod:`misto.sim.modbus.framing`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000
MAX_WRITE_REGISTERS = 123
MAX_WRITE_BITS = 1968


class Function(IntEnum):
    READ_COILS = 1
    READ_DISCRETE_INPUTS = 2
    READ_HOLDING_REGISTERS = 3
    READ_INPUT_REGISTERS = 4
    WRITE_SINGLE_COIL = 5
    WRITE_SINGLE_REGISTER = 6
    WRITE_MULTIPLE_COILS = 15
    WRITE_MULTIPLE_REGISTERS = 16


class ExceptionCode(IntEnum):
    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04
    ACKNOWLEDGE = 0x05
    SERVER_DEVICE_BUSY = 0x06
    GATEWAY_PATH_UNAVAILABLE = 0x0A
    GATEWAY_TARGET_FAILED = 0x0B


class ModbusRefusal(Exception):
    """A request answered with an exception response carrying ``code``."""

    def __init__(self, code: ExceptionCode) -> None:
        self.code = code
        super().__init__(f"exception {code:#04x} ({code.name.lower()})")


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. ``values`` are the words or bits (0/1) to write, ``None`` for a read."""

    function: Function
    address: int
    count: int
    values: tuple[int, ...] | None = None

    @property
    def is_bits(self) -> bool:
        return self.function in _BIT_FUNCTIONS


_BIT_FUNCTIONS = frozenset(
    {Function.READ_COILS, Function.READ_DISCRETE_INPUTS, Function.WRITE_SINGLE_COIL, Function.WRITE_MULTIPLE_COILS}
)
_FIXED_LENGTH = frozenset(range(1, 7))  # functions 1-6: code + 4 bytes


def request_length(pdu: bytes) -> int | None:
    """How long the request PDU starting ``pdu`` is, from its first bytes: 0 if more bytes are
    needed to tell, ``None`` for a function this server does not know (its length is unknown)."""
    if not pdu:
        return 0
    code = pdu[0]
    if code in _FIXED_LENGTH:
        return 5
    if code in (Function.WRITE_MULTIPLE_COILS, Function.WRITE_MULTIPLE_REGISTERS):
        return 6 + pdu[5] if len(pdu) >= 6 else 0
    return None


def _pack_bits(bits: list[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _unpack_bits(data: bytes, count: int) -> tuple[int, ...]:
    return tuple((data[i // 8] >> (i % 8)) & 1 for i in range(count))


def parse_request(pdu: bytes) -> Request:  # noqa: PLR0912 - one branch per function family
    """The request in ``pdu``; :class:`ModbusRefusal` for an unknown function (01) or a malformed
    or out-of-range request (03)."""
    if not pdu:
        raise ModbusRefusal(ExceptionCode.ILLEGAL_FUNCTION)
    try:
        function = Function(pdu[0])
    except ValueError:
        raise ModbusRefusal(ExceptionCode.ILLEGAL_FUNCTION) from None
    if len(pdu) < 5:
        raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_VALUE)
    address, second = int.from_bytes(pdu[1:3], "big"), int.from_bytes(pdu[3:5], "big")
    if function in (Function.READ_COILS, Function.READ_DISCRETE_INPUTS):
        if not 1 <= second <= MAX_READ_BITS:
            raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_VALUE)
        return Request(function, address, second)
    if function in (Function.READ_HOLDING_REGISTERS, Function.READ_INPUT_REGISTERS):
        if not 1 <= second <= MAX_READ_REGISTERS:
            raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_VALUE)
        return Request(function, address, second)
    if function is Function.WRITE_SINGLE_COIL:
        if second not in (0x0000, 0xFF00):
            raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_VALUE)
        return Request(function, address, 1, (1 if second else 0,))
    if function is Function.WRITE_SINGLE_REGISTER:
        return Request(function, address, 1, (second,))
    size = pdu[5] if len(pdu) > 5 else -1
    data = pdu[6:]
    if function is Function.WRITE_MULTIPLE_COILS:
        if not 1 <= second <= MAX_WRITE_BITS or size != (second + 7) // 8 or len(data) != size:
            raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_VALUE)
        return Request(function, address, second, _unpack_bits(data, second))
    if not 1 <= second <= MAX_WRITE_REGISTERS or size != 2 * second or len(data) != size:
        raise ModbusRefusal(ExceptionCode.ILLEGAL_DATA_VALUE)
    words = tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, size, 2))
    return Request(function, address, second, words)


def exception_response(function_code: int, code: ExceptionCode) -> bytes:
    return bytes((function_code | 0x80, code))


def read_response(request: Request, values: list[int]) -> bytes:
    """The answer to a read: the bits packed eight to a byte, or the 16-bit words."""
    data = _pack_bits(values) if request.is_bits else b"".join(v.to_bytes(2, "big") for v in values)
    return bytes((request.function, len(data))) + data


def write_response(request: Request, pdu: bytes) -> bytes:
    """The answer to a write: an echo of the request (05, 06) or of its address and count (15, 16)."""
    if request.function in (Function.WRITE_SINGLE_COIL, Function.WRITE_SINGLE_REGISTER):
        return pdu[:5]
    return bytes((request.function,)) + request.address.to_bytes(2, "big") + request.count.to_bytes(2, "big")
