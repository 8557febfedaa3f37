"""Framing of Modbus PDUs on the wire: RTU (unit id, PDU, CRC-16, as on a serial line or a
transparent serial-to-TCP converter) and MBAP (the 7-byte header of Modbus TCP)."""

from __future__ import annotations

from dataclasses import dataclass

from misto.sim.modbus.pdu import request_length

MBAP_HEADER = 7
MAX_RTU_FRAME = 256


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """The Modbus CRC-16 of ``data`` (sent low byte first)."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes((unit,)) + pdu
    return body + crc16(body).to_bytes(2, "little")


@dataclass(frozen=True, slots=True)
class RtuFrame:
    """A request frame read from the line: its unit id and PDU; ``crc_ok`` false if its CRC was wrong."""

    unit: int
    pdu: bytes
    crc_ok: bool


class RtuRequestReader:
    """Splits a byte stream into RTU request frames. The length of a frame follows from its
    function code; bytes that cannot start a frame (an unknown function) are skipped one at a
    time, as a slave hunting for the next frame does. Call :meth:`reset` after a silent gap."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0

    def reset(self) -> None:
        self.skipped += len(self._buffer)
        self._buffer.clear()

    def feed(self, data: bytes) -> list[RtuFrame]:
        self._buffer += data
        frames: list[RtuFrame] = []
        while len(self._buffer) >= 2:
            length = request_length(bytes(self._buffer[1:]))
            if length is None:
                del self._buffer[0]
                self.skipped += 1
                continue
            if length == 0 or len(self._buffer) < 1 + length + 2:
                break
            body = bytes(self._buffer[: 1 + length])
            crc = int.from_bytes(self._buffer[1 + length : 3 + length], "little")
            del self._buffer[: 3 + length]
            frames.append(RtuFrame(unit=body[0], pdu=body[1:], crc_ok=crc == crc16(body)))
        if len(self._buffer) > MAX_RTU_FRAME:
            self.reset()
        return frames


@dataclass(frozen=True, slots=True)
class MbapHeader:
    transaction: int
    protocol: int
    length: int
    unit: int

    @classmethod
    def parse(cls, data: bytes) -> MbapHeader:
        return cls(
            transaction=int.from_bytes(data[0:2], "big"),
            protocol=int.from_bytes(data[2:4], "big"),
            length=int.from_bytes(data[4:6], "big"),
            unit=data[6],
        )


def mbap_frame(transaction: int, unit: int, pdu: bytes) -> bytes:
    return transaction.to_bytes(2, "big") + b"\x00\x00" + (len(pdu) + 1).to_bytes(2, "big") + bytes((unit,)) + pdu
