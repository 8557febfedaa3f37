"""The generic register decoder and encoder, checked against pymodbus's own converters and hand-made vectors."""

from __future__ import annotations

import itertools
import math
import re
import struct

import pytest
from pymodbus.client import ModbusTcpClient

from misto.edge.errors import RegisterError
from misto.edge.registers import (
    DataType,
    Order,
    RegisterSpec,
    Table,
    decode,
    decode_raw,
    decode_text,
    encode,
    encode_bit,
    encode_raw,
    encode_text,
)

PYMODBUS_TYPE = {
    DataType.UINT16: ModbusTcpClient.DATATYPE.UINT16,
    DataType.INT16: ModbusTcpClient.DATATYPE.INT16,
    DataType.UINT32: ModbusTcpClient.DATATYPE.UINT32,
    DataType.INT32: ModbusTcpClient.DATATYPE.INT32,
    DataType.UINT64: ModbusTcpClient.DATATYPE.UINT64,
    DataType.INT64: ModbusTcpClient.DATATYPE.INT64,
    DataType.FLOAT32: ModbusTcpClient.DATATYPE.FLOAT32,
    DataType.FLOAT64: ModbusTcpClient.DATATYPE.FLOAT64,
}

# Values chosen so that every byte differs: a mixed-up byte or word shows.
SAMPLES: dict[DataType, list[int | float]] = {
    DataType.UINT16: [0, 1, 0xBEEF, 0xFFFF],
    DataType.INT16: [-32768, -1234, 0, 32767],
    DataType.UINT32: [0, 0xDEADBEEF, 2**32 - 1],
    DataType.INT32: [-(2**31), -123456789, 987654321],
    DataType.UINT64: [0, 0x0123456789ABCDEF, 2**64 - 1],
    DataType.INT64: [-(2**63), -1234567890123456789, 2**63 - 1],
    DataType.FLOAT32: [1.5, -273.15, 1013.25, 3.0e38, -1.0e-30],
    DataType.FLOAT64: [math.pi, -1.0e300, 2.5e-300, 0.1],
}


def swap_bytes(registers: list[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def pymodbus_registers(value: int | float, data_type: DataType, word_order: Order, byte_order: Order) -> list[int]:
    """Registers as pymodbus lays them out (it has word order only; byte order little swaps each register)."""
    registers = ModbusTcpClient.convert_to_registers(value, PYMODBUS_TYPE[data_type], word_order=word_order.value)
    return swap_bytes(registers) if byte_order is Order.LITTLE else registers


def as_stored(value: int | float, data_type: DataType) -> int | float:
    """What the type can hold: float32 rounds."""
    if data_type is DataType.FLOAT32:
        return float(struct.unpack(">f", struct.pack(">f", value))[0])
    return value


CASES = [
    pytest.param(t, w, b, v, id=f"{t}-{w}word-{b}byte-{v}")
    for t, w, b in itertools.product([t for t in DataType if t.is_number], Order, Order)
    for v in SAMPLES[t]
]


@pytest.mark.parametrize(("data_type", "word_order", "byte_order", "value"), CASES)
def test_decode_matches_pymodbus(data_type: DataType, word_order: Order, byte_order: Order, value: float) -> None:
    registers = pymodbus_registers(value, data_type, word_order, byte_order)
    assert len(registers) == data_type.words
    decoded = decode_raw(registers, data_type, word_order=word_order, byte_order=byte_order)
    assert decoded == as_stored(value, data_type)
    assert type(decoded) is (float if data_type.is_float else int)


@pytest.mark.parametrize(("data_type", "word_order", "byte_order", "value"), CASES)
def test_encode_matches_pymodbus(data_type: DataType, word_order: Order, byte_order: Order, value: float) -> None:
    expected = pymodbus_registers(value, data_type, word_order, byte_order)
    assert encode_raw(value, data_type, word_order=word_order, byte_order=byte_order) == expected


@pytest.mark.parametrize(
    ("registers", "data_type", "word_order", "byte_order", "expected"),
    [
        ([0x3FC0, 0x0000], DataType.FLOAT32, Order.BIG, Order.BIG, 1.5),  # ABCD
        ([0x0000, 0x3FC0], DataType.FLOAT32, Order.LITTLE, Order.BIG, 1.5),  # CDAB
        ([0xC03F, 0x0000], DataType.FLOAT32, Order.BIG, Order.LITTLE, 1.5),  # BADC
        ([0x0000, 0xC03F], DataType.FLOAT32, Order.LITTLE, Order.LITTLE, 1.5),  # DCBA
        ([0x0001, 0x0002], DataType.UINT32, Order.BIG, Order.BIG, 0x0001_0002),
        ([0x0001, 0x0002], DataType.UINT32, Order.LITTLE, Order.BIG, 0x0002_0001),
        ([0x1234], DataType.UINT16, Order.BIG, Order.LITTLE, 0x3412),
        ([0xFFFF], DataType.INT16, Order.BIG, Order.BIG, -1),
        ([0xFFFF, 0xFFFE], DataType.INT32, Order.BIG, Order.BIG, -2),
        ([0x0001, 0x0002, 0x0003, 0x0004], DataType.UINT64, Order.LITTLE, Order.BIG, 0x0004_0003_0002_0001),
        ([0x4009, 0x21FB, 0x5444, 0x2D18], DataType.FLOAT64, Order.BIG, Order.BIG, math.pi),
        ([0x7FC0, 0x0000], DataType.FLOAT32, Order.BIG, Order.BIG, math.nan),
    ],
)
def test_hand_written_vectors(
    registers: list[int], data_type: DataType, word_order: Order, byte_order: Order, expected: float
) -> None:
    decoded = decode_raw(registers, data_type, word_order=word_order, byte_order=byte_order)
    if math.isnan(expected):
        assert math.isnan(decoded)
        return
    assert decoded == expected
    assert encode_raw(expected, data_type, word_order=word_order, byte_order=byte_order) == registers


def spec(
    data_type: DataType = DataType.UINT16, *, scale: float = 1.0, offset: float = 0.0, **kw: Order
) -> RegisterSpec:
    return RegisterSpec("temperature", Table.INPUT, 0, data_type, "Cel", scale=scale, offset=offset, **kw)


@pytest.mark.parametrize(
    ("registers", "the_spec", "expected"),
    [
        ([123], spec(scale=0.1), 12.3),  # exactly the float nearest 12.3, not 12.300000000000001
        ([2345], spec(DataType.INT16, scale=0.01), 23.45),
        ([0xFFFF - 999], spec(DataType.INT16, scale=0.01), -10.0),
        ([7556], spec(scale=0.0001), 0.7556),
        ([0x0001, 0x8B33], spec(DataType.UINT32, scale=0.01), 1011.71),
        ([500], spec(scale=0.1, offset=-40), 10.0),
        ([10], spec(scale=2.5), 25.0),
        ([10], spec(scale=-1), -10.0),
        ([0x3FC0, 0x0000], spec(DataType.FLOAT32, scale=2, offset=1), 4.0),
    ],
)
def test_scale_and_offset(registers: list[int], the_spec: RegisterSpec, expected: float) -> None:
    assert decode(registers, the_spec) == expected


@pytest.mark.parametrize(
    ("value", "the_spec"),
    [
        (12.3, spec(scale=0.1)),
        (-10.0, spec(DataType.INT16, scale=0.01)),
        (21.5, spec(DataType.INT32, scale=0.001, word_order=Order.LITTLE)),
        (10.0, spec(scale=0.1, offset=-40)),
        (1013.25, spec(DataType.FLOAT32, word_order=Order.LITTLE, byte_order=Order.LITTLE)),
        (-5.5, spec(DataType.FLOAT64, scale=0.5, offset=3)),
    ],
)
def test_encode_then_decode_gives_the_value_back(value: float, the_spec: RegisterSpec) -> None:
    assert decode(encode(value, the_spec), the_spec) == pytest.approx(value, rel=1e-12)


def test_encode_rounds_to_the_register_resolution() -> None:
    assert encode(12.34, spec(scale=0.1)) == [123]
    assert encode(12.36, spec(scale=0.1)) == [124]


@pytest.mark.parametrize(
    ("value", "the_spec", "reason"),
    [
        (70000, spec(), "outside [0, 65535]"),
        (-1, spec(), "outside [0, 65535]"),
        (400.0, spec(DataType.INT16, scale=0.01), "cannot write 400.0: raw value 40000 is outside [-32768, 32767]"),
        (math.nan, spec(DataType.FLOAT32), "non-finite"),
        (1e39, spec(DataType.FLOAT32), "does not fit"),
    ],
)
def test_encode_refuses_values_the_register_cannot_hold(value: float, the_spec: RegisterSpec, reason: str) -> None:
    with pytest.raises(RegisterError, match=re.escape(reason)) as caught:
        encode(value, the_spec)
    assert caught.value.metric == "temperature"


@pytest.mark.parametrize(
    ("registers", "data_type", "reason"),
    [
        ([1], DataType.UINT32, "needs 2 register"),
        ([1, 2, 3], DataType.FLOAT32, "needs 2 register"),
        ([0x10000], DataType.UINT16, "not a 16-bit"),
        ([-1], DataType.INT16, "not a 16-bit"),
    ],
)
def test_decode_refuses_wrong_registers(registers: list[int], data_type: DataType, reason: str) -> None:
    with pytest.raises(RegisterError, match=reason):
        decode_raw(registers, data_type)


def bit_spec(bit: int, *, table: Table = Table.HOLDING, byte_order: Order = Order.BIG) -> RegisterSpec:
    return RegisterSpec(
        "tilted", table, 5, DataType.BIT, "1", bit=None if table.is_bits else bit, byte_order=byte_order
    )


@pytest.mark.parametrize(
    ("word", "bit", "byte_order", "expected"),
    [
        (0b0000_0000_0000_0001, 0, Order.BIG, 1.0),
        (0b0000_0000_0000_0001, 1, Order.BIG, 0.0),
        (0x8000, 15, Order.BIG, 1.0),
        (0x8000, 7, Order.LITTLE, 1.0),  # bytes swapped first: 0x0080
        (0x0001, 8, Order.LITTLE, 1.0),  # 0x0100
        (0x0001, 0, Order.LITTLE, 0.0),
    ],
)
def test_bit_fields(word: int, bit: int, byte_order: Order, expected: float) -> None:
    the_spec = bit_spec(bit, byte_order=byte_order)
    assert decode([word], the_spec) == expected
    assert encode_bit(expected, the_spec, word) == word  # writing what is there changes nothing
    flipped = encode_bit(1.0 - expected, the_spec, word)
    assert decode([flipped], the_spec) == 1.0 - expected
    assert flipped ^ word == (1 << bit if byte_order is Order.BIG else ((1 << bit) >> 8 | ((1 << bit) & 0xFF) << 8))


@pytest.mark.parametrize("table", [Table.COIL, Table.DISCRETE_INPUT])
def test_coils_and_discrete_inputs_are_zero_or_one(table: Table) -> None:
    the_spec = bit_spec(0, table=table)
    assert [decode([b], the_spec) for b in (0, 1)] == [0.0, 1.0]
    assert encode_bit(1, the_spec) == 1
    with pytest.raises(RegisterError, match="value 2 does not fit a bit"):
        decode([2], the_spec)
    with pytest.raises(RegisterError, match="a bit is 0 or 1"):
        encode_bit(0.5, the_spec)


def text_spec(count: int, byte_order: Order = Order.BIG) -> RegisterSpec:
    return RegisterSpec(
        "serialNumber", Table.HOLDING, 100, DataType.STRING, "", count=count, byte_order=byte_order, attribute=True
    )


@pytest.mark.parametrize(
    ("registers", "byte_order", "text"),
    [
        ([0x4D49, 0x5354, 0x4F00, 0x0000], Order.BIG, "MISTO"),  # "MI" "ST" "O\0" "\0\0"
        ([0x494D, 0x5453, 0x004F, 0x0000], Order.LITTLE, "MISTO"),
        ([0x5443, 0x2D31, 0x2020, 0x2020], Order.BIG, "TC-1"),  # space padding dropped too
        ([0x4142, 0x4344, 0x4546, 0x4748], Order.BIG, "ABCDEFGH"),
    ],
)
def test_strings(registers: list[int], byte_order: Order, text: str) -> None:
    the_spec = text_spec(len(registers), byte_order)
    assert decode_text(registers, the_spec) == text
    assert decode_text(encode_text(text, the_spec), the_spec) == text


def test_strings_are_not_numbers_and_must_fit() -> None:
    with pytest.raises(RegisterError, match="not a number"):
        decode([0x4142], text_spec(1))
    with pytest.raises(RegisterError, match="room for 2"):
        encode_text("ABC", text_spec(1))
    with pytest.raises(RegisterError, match="only ASCII"):
        encode_text("Херсон", text_spec(8))
    assert decode_text([0x41FF], text_spec(1)) == "A\ufffd"
    with pytest.raises(RegisterError, match="encode_string"):
        encode(1.0, text_spec(1))
