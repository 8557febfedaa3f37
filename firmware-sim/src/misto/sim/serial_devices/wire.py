"""The bytes each serial model sends, and the ways a fault spoils them. Pure functions.

SDS011 (Nova Fitness, datasheet V1.3), active reporting mode, one frame a second::

    0xAA 0xC0 PM2.5L PM2.5H PM10L PM10H ID1 ID2 checksum 0xAB

with PM values as little-endian unsigned tenths of µg/m³ and the checksum the sum of the six
data bytes modulo 256. NM-2: one ASCII line a second, ``LAeq=63.4 LAmax=71.2 dB(A)`` and CR LF.
"""

from __future__ import annotations

from collections.abc import Mapping

SDS011_HEADER = 0xAA
SDS011_DATA = 0xC0
SDS011_TAIL = 0xAB
LINE_END = b"\r\n"


def sds011_frame(values: Mapping[str, float], sensor_id: int) -> bytes:
    """The measurement frame for ``values`` (``pm25``, ``pm10`` in µg/m³, already in tenths)."""
    pm25, pm10 = round(values["pm25"] * 10), round(values["pm10"] * 10)
    data = bytes([pm25 & 0xFF, pm25 >> 8, pm10 & 0xFF, pm10 >> 8, sensor_id & 0xFF, sensor_id >> 8 & 0xFF])
    return bytes([SDS011_HEADER, SDS011_DATA]) + data + bytes([sum(data) & 0xFF, SDS011_TAIL])


def sds011_corrupt(frame: bytes) -> bytes:
    """The same frame with a checksum that does not add up (as after a bit flip on the line)."""
    return frame[:8] + bytes([(frame[8] + 1) & 0xFF]) + frame[9:]


def noise_line(values: Mapping[str, float]) -> bytes:
    """``LAeq=63.4 LAmax=71.2 dB(A)`` and CR LF."""
    return f"LAeq={values['LAeq']:.1f} LAmax={values['LAmax']:.1f} dB(A)".encode("ascii") + LINE_END


def noise_corrupt(line: bytes) -> bytes:
    """The same line with its first ``=`` turned into ``:``: printable, but no longer the format."""
    return line.replace(b"=", b":", 1)


def truncated(message: bytes, keep: int) -> bytes:
    """The first ``keep`` bytes of ``message`` (never its line ending): a message cut short."""
    body = message.removesuffix(LINE_END)
    return body[: max(1, min(keep, len(body) - 1))]


GARBAGE_BYTES = bytes(b for b in range(0x80, 0x100) if b != SDS011_HEADER)
"""What garbage is drawn from: never the SDS011 header byte (so a receiver's counts are exact:
garbage never looks like a frame), never ASCII (so on an ASCII line it spoils exactly the line it
precedes)."""
