"""Quantizing and encoding: what goes into the registers decodes back, with pymodbus's own
``convert_from_registers``, to exactly the value the state file reports."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import ModbusTcpClient

from misto.sim.devices import MODELS, RegisterTable, RegisterType, SimRegister, WordOrder
from misto.sim.encoding import bit_into, bit_of, decoded_value, quantize, register_words, scale_decimals, to_float32
from misto.sim.errors import EncodingError
from misto.sim.signals import Daily

DT = ModbusTcpClient.DATATYPE
PYMODBUS_TYPE = {
    RegisterType.UINT16: DT.UINT16,
    RegisterType.INT16: DT.INT16,
    RegisterType.UINT32: DT.UINT32,
    RegisterType.INT32: DT.INT32,
    RegisterType.FLOAT32: DT.FLOAT32,
    RegisterType.UINT64: DT.UINT64,
    RegisterType.INT64: DT.INT64,
    RegisterType.FLOAT64: DT.FLOAT64,
}
NUMBERS = [t for t in RegisterType if t is not RegisterType.BIT]
ANY_SIGNAL = Daily(base=0.0, floor=-1e9, ceiling=1e9)


def reg(
    kind: RegisterType,
    order: WordOrder = WordOrder.BIG,
    scale: float = 1.0,
    byte_order: WordOrder = WordOrder.BIG,
) -> SimRegister:
    return SimRegister(
        metric="temperature",
        unit="Cel",
        table=RegisterTable.INPUT,
        address=0,
        type=kind,
        word_order=order,
        byte_order=byte_order,
        scale=scale,
        signal=ANY_SIGNAL,
    )


def decode(register: SimRegister, words: list[int]) -> float:
    """An independent decoder: pymodbus for the bits (it knows word order; byte order swaps each
    register first), then raw × scale."""
    if register.byte_order is WordOrder.LITTLE:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    raw = ModbusTcpClient.convert_from_registers(
        words, PYMODBUS_TYPE[register.type], word_order="little" if register.word_order is WordOrder.LITTLE else "big"
    )
    assert isinstance(raw, int | float)
    if register.type in (RegisterType.FLOAT32, RegisterType.FLOAT64):
        return raw * register.scale
    return round(raw * register.scale, scale_decimals(register.scale))


def round_trip(register: SimRegister, value: float) -> tuple[float, list[int]]:
    q = quantize(register, value)
    words = register_words(register, q.raw)
    assert len(words) == register.words
    assert all(0 <= w <= 0xFFFF for w in words)
    decoded = decode(register, words)
    assert decoded == q.value, (register.type, register.word_order, value, q, words)
    return decoded, words


@pytest.mark.parametrize(
    ("kind", "order", "scale", "value", "words", "decoded"),
    [
        (RegisterType.UINT16, WordOrder.BIG, 0.1, 12.34, [123], 12.3),
        (RegisterType.UINT16, WordOrder.BIG, 0.0001, 0.6789, [6789], 0.6789),
        (RegisterType.INT16, WordOrder.BIG, 0.01, -5.25, [0x10000 - 525], -5.25),
        (RegisterType.UINT32, WordOrder.BIG, 0.01, 1013.25, [0x0001, 0x8BCD], 1013.25),
        (RegisterType.UINT32, WordOrder.LITTLE, 0.01, 1013.25, [0x8BCD, 0x0001], 1013.25),
        (RegisterType.INT32, WordOrder.BIG, 0.001, -12.345, [0xFFFF, 0xCFC7], -12.345),
        (RegisterType.INT32, WordOrder.LITTLE, 0.001, -12.345, [0xCFC7, 0xFFFF], -12.345),
        (RegisterType.FLOAT32, WordOrder.BIG, 1, 1.0, [0x3F80, 0x0000], 1.0),
        (RegisterType.FLOAT32, WordOrder.LITTLE, 1, 1.0, [0x0000, 0x3F80], 1.0),
        (RegisterType.FLOAT32, WordOrder.BIG, 1, 0.1, [0x3DCC, 0xCCCD], 0.10000000149011612),
    ],
)
def test_known_encodings(  # noqa: PLR0917 - parametrized test arguments
    kind: RegisterType, order: WordOrder, scale: float, value: float, words: list[int], decoded: float
) -> None:
    register = reg(kind, order, scale)
    assert round_trip(register, value) == (decoded, words)


@pytest.mark.parametrize("kind", NUMBERS)
@pytest.mark.parametrize("order", list(WordOrder))
@pytest.mark.parametrize("byte_order", list(WordOrder))
@given(value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_round_trip_every_type_and_order(
    kind: RegisterType, order: WordOrder, byte_order: WordOrder, value: float
) -> None:
    for scale in (1.0, 0.1, 0.01, 0.001, 0.0001):
        round_trip(reg(kind, order, scale, byte_order), value)


@pytest.mark.parametrize(
    ("kind", "order", "byte_order", "value", "words"),
    [
        (RegisterType.FLOAT32, WordOrder.BIG, WordOrder.LITTLE, 1.5, [0xC03F, 0x0000]),  # BADC
        (RegisterType.FLOAT32, WordOrder.LITTLE, WordOrder.LITTLE, 1.5, [0x0000, 0xC03F]),  # DCBA
        (RegisterType.UINT16, WordOrder.BIG, WordOrder.LITTLE, 0x1234, [0x3412]),
        (RegisterType.UINT64, WordOrder.LITTLE, WordOrder.BIG, 0x0001_0002_0003_0004, [4, 3, 2, 1]),
        (RegisterType.FLOAT64, WordOrder.BIG, WordOrder.BIG, 1.0, [0x3FF0, 0, 0, 0]),
    ],
)
def test_byte_orders_and_wide_types(
    kind: RegisterType, order: WordOrder, byte_order: WordOrder, value: float, words: list[int]
) -> None:
    assert register_words(reg(kind, order, 1.0, byte_order), value) == words


def test_bit_fields_share_a_register() -> None:
    low = SimRegister(
        metric="tilted", unit="1", table=RegisterTable.INPUT, address=2, type=RegisterType.BIT, bit=0, signal=ANY_SIGNAL
    )
    high = SimRegister(
        metric="fireDetected",
        unit="1",
        table=RegisterTable.INPUT,
        address=2,
        type=RegisterType.BIT,
        bit=9,
        signal=ANY_SIGNAL,
    )
    word = bit_into(bit_into(0, low, 1), high, 1)
    assert word == 0b10_0000_0001
    assert (bit_of(word, low), bit_of(word, high)) == (1, 1)
    assert bit_into(word, low, 0) == 0b10_0000_0000


@pytest.mark.parametrize(
    ("kind", "value", "raw"),
    [
        (RegisterType.UINT16, -1.0, 0),
        (RegisterType.UINT16, 70000.0, 0xFFFF),
        (RegisterType.INT16, -40000.0, -0x8000),
        (RegisterType.INT16, 40000.0, 0x7FFF),
        (RegisterType.UINT32, -3.0, 0),
        (RegisterType.INT32, 3e9, 0x7FFF_FFFF),
        (RegisterType.FLOAT32, 1e39, 3.4028234663852886e38),
        (RegisterType.FLOAT32, -1e39, -3.4028234663852886e38),
    ],
)
def test_values_that_do_not_fit_are_clamped_and_flagged(kind: RegisterType, value: float, raw: float) -> None:
    q = quantize(reg(kind), value)
    assert q.clamped
    assert q.raw == raw
    round_trip(reg(kind), value)


def test_values_that_fit_are_not_flagged() -> None:
    assert not quantize(reg(RegisterType.INT16), -32768.4).clamped  # rounds to the minimum
    assert not quantize(reg(RegisterType.UINT16), 65535.0).clamped


def test_non_finite_values_are_refused() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(EncodingError, match="not a finite number"):
            quantize(reg(RegisterType.FLOAT32), bad)


def test_float32_values_are_float32_exact() -> None:
    q = quantize(reg(RegisterType.FLOAT32), 23.4)
    assert q.value == struct.unpack(">f", struct.pack(">f", 23.4))[0] == to_float32(23.4)
    assert q.value != 23.4


def test_scale_decimals() -> None:
    assert [scale_decimals(s) for s in (1, 1.0, 10, 0.1, 0.01, 0.001, 0.0001, 1e-5, 0.5)] == [0, 0, 0, 1, 2, 3, 4, 5, 1]


def test_decoded_value_matches_quantize_for_the_shipped_maps() -> None:
    for model in MODELS.values():
        for register in model.registers:
            if register.type is RegisterType.BIT:
                continue
            q = quantize(register, (register.signal.floor + register.signal.ceiling) / 3)
            assert decoded_value(register, q.raw) == q.value
            round_trip(register, (register.signal.floor + register.signal.ceiling) / 3)
