"""From an engineering value to the number a register holds, and back to what a correct
decoder reads. Pure arithmetic: the 16-bit words themselves are made by the transport
(``misto.sim.modbus_server``), since another transport frames numbers its own way."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from decimal import Decimal

from misto.sim.devices.model import SimRegister, ValueKind
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
        raw_float = to_float32(bounded)
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
