"""The Nova Fitness SDS011 wire format and a stream parser that resynchronises on bad input.

In active reporting mode the sensor sends one 10-byte frame a second (9600 baud, 8N1)::

    byte  0     1     2       3       4      5      6    7    8         9
          0xAA  0xC0  PM2.5L  PM2.5H  PM10L  PM10H  ID1  ID2  checksum  0xAB

PM2.5 and PM10 are little-endian unsigned tenths of µg/m³; the checksum is the sum of bytes 2..7
modulo 256. Replies to commands have the same shape with command byte 0xC5; they carry no
measurement and are counted and skipped.

The parser is pure (no I/O, no clock): :meth:`Sds011Parser.feed` takes the bytes that arrived and
the monotonic time they arrived, and returns the complete measurement frames. Nothing it is given
can make it fail; every byte that is not part of a good frame is counted once, as one of:

- ``garbage_bytes``: bytes outside any frame (line noise, a sensor waking up);
- ``bad_checksum``: a frame with header and tail in place whose checksum does not add up
  (its 10 bytes are dropped);
- ``short_frames``: a frame cut short, recognised when the next frame's header appears before
  its tail, or when the line has been quiet for ``gap`` seconds with a frame half received.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FRAME_LENGTH = 10
HEADER = 0xAA
TAIL = 0xAB
DATA_COMMAND = 0xC0
REPLY_COMMAND = 0xC5
COMMANDS = frozenset({DATA_COMMAND, REPLY_COMMAND})
FRAME_GAP = 0.5
"""Seconds of silence after which a half-received frame is given up (a frame takes ~10 ms at 9600 baud)."""


@dataclass(frozen=True, slots=True)
class Sds011Frame:
    pm25: float
    """µg/m³"""
    pm10: float
    sensor_id: int
    """The sensor's 2-byte id (ID1 is the low byte)."""


@dataclass(slots=True)
class Sds011Counters:
    frames: int = 0
    replies: int = 0
    bad_checksum: int = 0
    garbage_bytes: int = 0
    short_frames: int = 0

    def errors(self) -> int:
        return self.bad_checksum + self.garbage_bytes + self.short_frames

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def checksum(frame: bytes | bytearray) -> int:
    """The checksum of a 10-byte frame: bytes 2..7 summed, modulo 256."""
    return sum(frame[2:8]) & 0xFF


def decode_frame(frame: bytes | bytearray) -> Sds011Frame:
    """The values of a measurement frame already checked by the parser."""
    return Sds011Frame(
        pm25=(frame[2] | frame[3] << 8) / 10,
        pm10=(frame[4] | frame[5] << 8) / 10,
        sensor_id=frame[6] | frame[7] << 8,
    )


def encode_frame(pm25_tenths: int, pm10_tenths: int, sensor_id: int = 0) -> bytes:
    """A measurement frame (for tests and tools)."""
    body = bytes(
        [
            pm25_tenths & 0xFF,
            pm25_tenths >> 8 & 0xFF,
            pm10_tenths & 0xFF,
            pm10_tenths >> 8 & 0xFF,
            sensor_id & 0xFF,
            sensor_id >> 8 & 0xFF,
        ]
    )
    return bytes([HEADER, DATA_COMMAND]) + body + bytes([sum(body) & 0xFF, TAIL])


class Sds011Parser:
    """Turns a byte stream into frames, counting and skipping everything else."""

    def __init__(self, *, gap: float = FRAME_GAP) -> None:
        self.gap = gap
        self.counters = Sds011Counters()
        self._buffer = bytearray()
        self._last_at: float | None = None

    def reset(self) -> None:
        """Forget a half-received frame (the port was reopened); counters are kept."""
        self._buffer.clear()
        self._last_at = None

    def feed(self, data: bytes, at: float) -> list[Sds011Frame]:
        """The frames completed by ``data``, which arrived at monotonic time ``at``."""
        if self._buffer and self._last_at is not None and at - self._last_at > self.gap:
            self._give_up_partial()
        self._last_at = at
        self._buffer += data
        return self._scan()

    def _give_up_partial(self) -> None:
        buffer = self._buffer
        if buffer[0] == HEADER and (len(buffer) == 1 or buffer[1] in COMMANDS):
            self.counters.short_frames += 1
        else:  # cannot happen after a scan, which keeps only a frame's beginning; counted all the same
            self.counters.garbage_bytes += len(buffer)
        buffer.clear()

    def _scan(self) -> list[Sds011Frame]:
        buffer, counters = self._buffer, self.counters
        frames: list[Sds011Frame] = []
        i, end = 0, len(buffer)
        while i < end:
            start = buffer.find(HEADER, i)
            if start < 0:
                counters.garbage_bytes += end - i
                i = end
                break
            counters.garbage_bytes += start - i
            i = start
            if end - i < 2:
                break  # a lone header byte: wait for the command byte
            if buffer[i + 1] not in COMMANDS:
                counters.garbage_bytes += 1  # 0xAA inside noise
                i += 1
                continue
            if end - i < FRAME_LENGTH:
                break  # wait for the rest of the frame
            frame = buffer[i : i + FRAME_LENGTH]
            if frame[9] != TAIL:
                restart = _next_header(frame)
                if restart is None:
                    counters.garbage_bytes += 1
                    i += 1
                else:
                    counters.short_frames += 1
                    i += restart
                continue
            i += FRAME_LENGTH
            if checksum(frame) != frame[8]:
                counters.bad_checksum += 1
            elif frame[1] == DATA_COMMAND:
                counters.frames += 1
                frames.append(decode_frame(frame))
            else:
                counters.replies += 1
        del buffer[:i]
        return frames


def _next_header(frame: bytearray) -> int | None:
    """Where a frame header starts inside ``frame`` (after its first byte): the next frame began
    before this one ended. A header byte in the last position counts (its command byte is next)."""
    for k in range(1, FRAME_LENGTH):
        if frame[k] == HEADER and (k == FRAME_LENGTH - 1 or frame[k + 1] in COMMANDS):
            return k
    return None
