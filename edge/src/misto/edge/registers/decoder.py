"""The one generic register decoder and its inverse, the encoder.

A value of N 16-bit registers is laid out as bytes, then unpacked with :mod:`struct` (big-endian
format codes). ``byte_order`` swaps the two bytes inside each register; ``word_order`` reverses
the order of the registers of one value. Reading and writing share :func:`_to_bytes` and
:func:`_from_bytes`, so a value written with a spec reads back with the same spec.

Scaling: engineering = raw * scale + offset. When ``1/scale`` is a whole number (0.1, 0.01,
0.0001...) the raw value is divided by it instead, which gives the float nearest the decimal
value (``123 / 10 == 12.3``, while ``123 * 0.1 == 12.300000000000001``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Literal

from misto.edge.errors import RegisterError
from misto.edge.registers.spec import DataType, Order, RegisterSpec

_INT_RANGE: dict[DataType, tuple[int, int]] = {
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT64: (0, 2**64 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
}


def _from_words(words: Sequence[int], *, word_order: Order, byte_order: Order) -> bytes:
    ordered = list(reversed(words)) if word_order is Order.LITTLE else list(words)
    endian: Literal["big", "little"] = "big" if byte_order is Order.BIG else "little"
    return b"".join(word.to_bytes(2, endian) for word in ordered)


def _to_words(data: bytes, *, word_order: Order, byte_order: Order) -> list[int]:
    endian: Literal["big", "little"] = "big" if byte_order is Order.BIG else "little"
    words = [int.from_bytes(data[i : i + 2], endian) for i in range(0, len(data), 2)]
    return list(reversed(words)) if word_order is Order.LITTLE else words


def decode_raw(
    registers: Sequence[int], data_type: DataType, *, word_order: Order = Order.BIG, byte_order: Order = Order.BIG
) -> int | float:
    """The unscaled value held by ``registers`` (exactly ``data_type.words`` of them)."""
    if len(registers) != data_type.words:
        raise RegisterError(str(data_type), f"needs {data_type.words} register(s), got {len(registers)}")
    for word in registers:
        if not 0 <= word <= 0xFFFF:
            raise RegisterError(str(data_type), f"register value {word} is not a 16-bit unsigned integer")
    data = _from_words(registers, word_order=word_order, byte_order=byte_order)
    value: int | float = struct.unpack(f">{data_type.struct_code}", data)[0]
    return value


def encode_raw(
    value: int | float, data_type: DataType, *, word_order: Order = Order.BIG, byte_order: Order = Order.BIG
) -> list[int]:
    """Registers holding the unscaled ``value`` (an int for integer types)."""
    if data_type.is_float:
        try:
            data = struct.pack(f">{data_type.struct_code}", float(value))
        except (OverflowError, struct.error) as exc:
            raise RegisterError(str(data_type), f"{value!r} does not fit: {exc}") from None
    else:
        if not isinstance(value, int):
            raise RegisterError(str(data_type), f"needs a whole number, got {value!r}")
        low, high = _INT_RANGE[data_type]
        if not low <= value <= high:
            raise RegisterError(str(data_type), f"raw value {value} is outside [{low}, {high}]")
        data = struct.pack(f">{data_type.struct_code}", value)
    return _to_words(data, word_order=word_order, byte_order=byte_order)


def _divisor(scale: float) -> float | None:
    """``1/scale`` when it is a whole number greater than one, else ``None``."""
    if scale == 0 or abs(scale) >= 1:
        return None
    inverse = 1 / scale
    rounded = round(inverse)
    return float(rounded) if math.isclose(inverse, rounded, rel_tol=1e-12) else None


def scale_value(raw: int | float, spec: RegisterSpec) -> float:
    divisor = _divisor(spec.scale)
    value = raw / divisor if divisor is not None else raw * spec.scale
    return float(value + spec.offset) if spec.offset else float(value)


def unscale_value(value: float, spec: RegisterSpec) -> float:
    divisor = _divisor(spec.scale)
    base = value - spec.offset
    return base * divisor if divisor is not None else base / spec.scale


def decode(registers: Sequence[int], spec: RegisterSpec) -> float:
    """Engineering value of ``spec`` from its registers (may be NaN/inf for float types: callers check)."""
    try:
        raw = decode_raw(registers, spec.type, word_order=spec.word_order, byte_order=spec.byte_order)
    except RegisterError as exc:
        raise RegisterError(spec.metric, exc.reason) from None
    return scale_value(raw, spec)


def encode(value: float, spec: RegisterSpec) -> list[int]:
    """Registers to write so that :func:`decode` gives back ``value`` (rounded to the register's resolution)."""
    if not math.isfinite(value):
        raise RegisterError(spec.metric, f"cannot write non-finite value {value!r}")
    raw = unscale_value(value, spec)
    try:
        if spec.type.is_float:
            return encode_raw(raw, spec.type, word_order=spec.word_order, byte_order=spec.byte_order)
        return encode_raw(round(raw), spec.type, word_order=spec.word_order, byte_order=spec.byte_order)
    except RegisterError as exc:
        raise RegisterError(spec.metric, f"cannot write {value!r}: {exc.reason}") from None
