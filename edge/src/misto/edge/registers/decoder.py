"""The one generic register decoder and its inverse, the encoder.

A value of N 16-bit registers is laid out as bytes, then unpacked with :mod:`struct` (big-endian
format codes). ``byte_order`` swaps the two bytes inside each register; ``word_order`` reverses
the order of the registers of one value. Reading and writing share :func:`_from_words` and
:func:`_to_words`, so a value written with a spec reads back with the same spec.

Bits (``type: bit``) are a coil or discrete input (0/1), or one bit of a register as laid out by
``byte_order`` (bit 0 is the least significant). Strings are ``count`` registers of ASCII, two
characters per register in ``byte_order``; trailing NULs and spaces are dropped.

Scaling: engineering = raw * scale + offset. When ``1/scale`` is a whole number (0.1, 0.01,
0.0001...) the raw value is divided by it instead, which gives the float nearest the decimal
value (``123 / 10 == 12.3``, while ``123 * 0.1 == 12.300000000000001``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
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
    if not data_type.is_number:
        raise RegisterError(str(data_type), "is not a number type")
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
    if not data_type.is_number:
        raise RegisterError(str(data_type), "is not a number type")
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


def _check_words(registers: Sequence[int], spec: RegisterSpec) -> None:
    if len(registers) != spec.words:
        raise RegisterError(spec.metric, f"needs {spec.words} register(s), got {len(registers)}")
    limit = 1 if spec.table.is_bits else 0xFFFF
    for word in registers:
        if not 0 <= word <= limit:
            raise RegisterError(spec.metric, f"value {word} does not fit a {'bit' if limit == 1 else 'register'}")


def _swap(word: int, byte_order: Order) -> int:
    return ((word & 0xFF) << 8) | (word >> 8) if byte_order is Order.LITTLE else word


def decode(registers: Sequence[int], spec: RegisterSpec) -> float:
    """Engineering value of ``spec`` from its registers (may be NaN/inf for float types: callers check).
    A bit decodes to 0.0 or 1.0; a string is not a number (:func:`decode_text`)."""
    return compile_decoder(spec)(registers)


Decoder = Callable[[Sequence[int]], float]
"""A spec's registers to its engineering value, with everything about the spec worked out once."""


def compile_decoder(spec: RegisterSpec) -> Decoder:
    """:func:`decode` for one spec, prepared once: the poll loop calls it for every value it reads.

    Numbers pack the registers with one :mod:`struct` call in the spec's byte order (which also
    checks that each is a 16-bit unsigned integer) and unpack them with the type's format."""
    if spec.type is DataType.STRING:
        raise RegisterError(spec.metric, "a string is not a number: use decode_text")
    if spec.type is DataType.BIT:
        return _bit_decoder(spec)
    words = spec.type.words
    pack = struct.Struct(f"{'>' if spec.byte_order is Order.BIG else '<'}{words}H").pack
    unpack = struct.Struct(f">{spec.type.struct_code}").unpack
    reverse = spec.word_order is Order.LITTLE
    divisor = _divisor(spec.scale)
    scale, offset = spec.scale, spec.offset

    def decode_number(registers: Sequence[int]) -> float:
        if len(registers) != words:
            raise RegisterError(spec.metric, f"needs {words} register(s), got {len(registers)}")
        try:
            data = pack(*(registers[::-1] if reverse else registers))
        except struct.error:
            bad = next(w for w in registers if not 0 <= w <= 0xFFFF)
            raise RegisterError(spec.metric, f"register value {bad} is not a 16-bit unsigned integer") from None
        raw: int | float = unpack(data)[0]
        value = raw / divisor if divisor is not None else raw * scale
        return float(value + offset) if offset else float(value)

    return decode_number


def _bit_decoder(spec: RegisterSpec) -> Decoder:
    def decode_bit(registers: Sequence[int]) -> float:
        _check_words(registers, spec)
        if spec.table.is_bits:
            return float(registers[0])
        return float((_swap(registers[0], spec.byte_order) >> (spec.bit or 0)) & 1)

    return decode_bit


def decode_text(registers: Sequence[int], spec: RegisterSpec) -> str:
    """The ASCII text held by a string's registers, without trailing NULs and spaces (other bytes
    show as U+FFFD)."""
    _check_words(registers, spec)
    data = b"".join(_swap(word, spec.byte_order).to_bytes(2, "big") for word in registers)
    return data.decode("ascii", errors="replace").rstrip("\x00 ")


def encode_text(text: str, spec: RegisterSpec) -> list[int]:
    """Registers holding ``text`` (ASCII, padded with NULs to ``count`` registers)."""
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        raise RegisterError(spec.metric, f"cannot write {text!r}: only ASCII text fits a string register") from None
    size = spec.words * 2
    if len(data) > size:
        raise RegisterError(spec.metric, f"cannot write {text!r}: {len(data)} characters, room for {size}")
    data = data.ljust(size, b"\x00")
    return [_swap(int.from_bytes(data[i : i + 2], "big"), spec.byte_order) for i in range(0, size, 2)]


def encode_bit(value: float, spec: RegisterSpec, current: int = 0) -> int:
    """The coil value (0/1), or ``current`` (the register as read) with bit ``spec.bit`` set to ``value``."""
    if value not in (0, 1):
        raise RegisterError(spec.metric, f"cannot write {value!r}: a bit is 0 or 1")
    if spec.table.is_bits:
        return int(value)
    mask = 1 << (spec.bit or 0)
    word = _swap(current, spec.byte_order)
    word = (word | mask) if value else (word & ~mask)
    return _swap(word, spec.byte_order)


def encode(value: float, spec: RegisterSpec) -> list[int]:
    """Registers to write so that :func:`decode` gives back ``value`` (rounded to the register's resolution).
    Numbers only: bits need :func:`encode_bit`, strings :func:`encode_text`."""
    if not spec.type.is_number:
        raise RegisterError(spec.metric, f"encode() writes numbers; a {spec.type} needs encode_{spec.type}")
    if not math.isfinite(value):
        raise RegisterError(spec.metric, f"cannot write non-finite value {value!r}")
    raw = unscale_value(value, spec)
    try:
        if spec.type.is_float:
            return encode_raw(raw, spec.type, word_order=spec.word_order, byte_order=spec.byte_order)
        return encode_raw(round(raw), spec.type, word_order=spec.word_order, byte_order=spec.byte_order)
    except RegisterError as exc:
        raise RegisterError(spec.metric, f"cannot write {value!r}: {exc.reason}") from None
