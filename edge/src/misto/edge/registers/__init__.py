"""Register maps as data: specs, the one generic decoder/encoder, the read planner and built-in profiles."""

from misto.edge.registers.decoder import (
    decode,
    decode_raw,
    decode_text,
    encode,
    encode_bit,
    encode_raw,
    encode_text,
)
from misto.edge.registers.planner import MAX_READ_BITS, MAX_READ_REGISTERS, ReadRequest, plan_reads
from misto.edge.registers.spec import DataType, Order, RegisterSpec, Table

__all__ = [
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "DataType",
    "Order",
    "ReadRequest",
    "RegisterSpec",
    "Table",
    "decode",
    "decode_raw",
    "decode_text",
    "encode",
    "encode_bit",
    "encode_raw",
    "encode_text",
    "plan_reads",
]
