"""Misto wire contract: topics, messages, vocabulary and codec."""

from misto.protocol.codec import MAX_PAYLOAD_BYTES, decode, decode_telemetry, encode
from misto.protocol.errors import DecodeError, ProtocolError, TopicError
from misto.protocol.messages import (
    SCHEMA_VERSION,
    Ack,
    AckResult,
    BufferHealth,
    Command,
    ConfigUpdate,
    DeviceHealth,
    DeviceState,
    GatewayState,
    Health,
    LinkHealth,
    Reading,
    Status,
    Telemetry,
)
from misto.protocol.topics import Channel, Topic

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "Ack",
    "AckResult",
    "BufferHealth",
    "Channel",
    "Command",
    "ConfigUpdate",
    "DecodeError",
    "DeviceHealth",
    "DeviceState",
    "GatewayState",
    "Health",
    "LinkHealth",
    "ProtocolError",
    "Reading",
    "Status",
    "Telemetry",
    "Topic",
    "TopicError",
    "decode",
    "decode_telemetry",
    "encode",
]
