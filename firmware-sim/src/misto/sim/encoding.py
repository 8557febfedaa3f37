"""From an engineering value to the number a register holds, to the 16-bit words on the wire,
and back to what a correct decoder reads. Pure arithmetic, shared by every transport."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from misto.sim.devices.model import RegisterType, SimRegister, SimText, ValueKind, WordOrder
from misto.sim.errors import EncodingError


@dataclass(frozen=True, slots=True)
class Quantized:
    """``raw`` is the number stored in the register (an int, or a float exactly representable
    as float32); ``value`` is what a decoder computes from it (``raw × scale``); ``clamped``
    says the engineering value did not fit the register type and was clamped."""

    raw: int | float
    value: float
    clamped: bool


def scale_decimals(scale: float) -> int:
    """Decimal places a scale implies: 0.1 -> 1, 0.0001 -> 4, 1 -> 0, 10 -> 0."""
    exponent = Decimal(repr(scale)).normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite scales only; the model checks scale > 0
    return max(0, -exponent)


def to_float32(x: float) -> float:
    """``x`` rounded to the nearest IEEE 754 single-precision number."""
    rounded: float = struct.unpack(">f", struct.pack(">f", x))[0]
    return rounded


def quantize(register: SimRegister, engineering: float) -> Quantized:
    """Encode ``engineering`` for ``register``: ``round(engineering / scale)`` clamped to the
    integer type's range, or ``engineering / scale`` rounded to float32 (clamped to its finite
    range). Integer values decode to ``raw × scale`` rounded to the scale's decimal places,
    so 123 at scale 0.1 reads 12.3 rather than 12.300000000000001."""
    if not math.isfinite(engineering):
        raise EncodingError(register.metric, engineering, "not a finite number")
    info = register.type.info
    scaled = engineering / register.scale
    if info.kind is ValueKind.FLOAT:
        bounded = min(max(scaled, info.minimum), info.maximum)
        raw_float = to_float32(bounded) if register.type is RegisterType.FLOAT32 else bounded
        return Quantized(raw=raw_float, value=decoded_value(register, raw_float), clamped=bounded != scaled)
    rounded = round(scaled)
    raw_int = int(min(max(rounded, info.minimum), info.maximum))
    return Quantized(raw=raw_int, value=decoded_value(register, raw_int), clamped=raw_int != rounded)


def decoded_value(register: SimRegister, raw: int | float) -> float:
    """The engineering value a decoder computes from the number in ``register``: ``raw × scale``,
    rounded to the scale's decimal places for integer types."""
    if register.type.info.kind is ValueKind.FLOAT:
        return raw * register.scale
    return round(raw * register.scale, scale_decimals(register.scale))


def _endian(order: WordOrder) -> Literal["big", "little"]:
    return "big" if order is WordOrder.BIG else "little"


def register_words(register: SimRegister, raw: int | float) -> list[int]:
    """The 16-bit words that hold ``raw`` (already quantized) in a number ``register``, in its
    word and byte order. A bit has no word of its own: see :func:`bit_into`."""
    info = register.type.info
    if register.type is RegisterType.BIT:
        raise EncodingError(register.metric, raw, "a bit is not a whole register")
    value = float(raw) if info.kind is ValueKind.FLOAT else int(raw)
    data = struct.pack(f">{info.struct_code}", value)
    words = [int.from_bytes(data[i : i + 2], _endian(register.byte_order)) for i in range(0, len(data), 2)]
    return words[::-1] if register.word_order is WordOrder.LITTLE else words


def words_value(register: SimRegister, words: list[int]) -> int | float:
    """The raw number that ``words`` hold for a number ``register`` (the inverse of :func:`register_words`)."""
    ordered = words[::-1] if register.word_order is WordOrder.LITTLE else words
    data = b"".join(w.to_bytes(2, _endian(register.byte_order)) for w in ordered)
    raw: int | float = struct.unpack(f">{register.type.info.struct_code}", data)[0]
    return raw


def bit_into(word: int, register: SimRegister, value: int) -> int:
    """``word`` with the bit of a bit-field ``register`` set to ``value`` (bit numbers count in the
    register's byte order: with ``little``, bit 0 is the lowest bit of the first byte)."""
    mask = 1 << (register.bit or 0)
    if register.byte_order is WordOrder.LITTLE:
        mask = ((mask & 0xFF) << 8) | (mask >> 8)
    return (word | mask) if value else (word & ~mask & 0xFFFF)


def bit_of(word: int, register: SimRegister) -> int:
    """The bit of a bit-field ``register`` in ``word``."""
    return 1 if bit_into(0, register, 1) & word else 0


def text_words(text: SimText) -> list[int]:
    """``text`` as ASCII, two characters per register, padded with NULs."""
    data = text.text.encode("ascii").ljust(text.words * 2, b"\x00")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
