"""JSON codec for protocol messages. Decoding is strict and every failure is a
:class:`DecodeError` naming the JSON path of the bad field and the topic."""

from __future__ import annotations

import re
from typing import Final, TypeVar

import msgspec

from misto.protocol.errors import DecodeError
from misto.protocol.messages import SCHEMA_VERSION, Ack, Command, ConfigUpdate, Health, Status, Telemetry

MAX_PAYLOAD_BYTES: Final = 256 * 1024

T = TypeVar("T", Telemetry, Status, Health, ConfigUpdate, Command, Ack)

_encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder[object]] = {
    cls: msgspec.json.Decoder(cls) for cls in (Telemetry, Status, Health, ConfigUpdate, Command, Ack)
}
_envelope = msgspec.json.Decoder(dict[str, object])
_AT_PATH = re.compile(r"^(?P<reason>.*) - at `(?P<path>[^`]+)`$")


def encode(message: Telemetry | Status | Health | ConfigUpdate | Command | Ack) -> bytes:
    return _encoder.encode(message)


def decode(payload: bytes, cls: type[T], *, topic: str | None = None) -> T:
    """Decode ``payload`` into ``cls`` or raise :class:`DecodeError`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit", topic=topic)
    try:
        result = _decoders[cls].decode(payload)
    except msgspec.ValidationError as exc:
        raise _explain(str(exc), payload, topic) from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}", topic=topic) from None
    assert isinstance(result, cls)
    return result


def decode_telemetry(payload: bytes, *, topic: str | None = None) -> Telemetry:
    return decode(payload, Telemetry, topic=topic)


def _explain(message: str, payload: bytes, topic: str | None) -> DecodeError:
    match = _AT_PATH.match(message)
    reason, path = (match["reason"], match["path"]) if match else (message, "$")
    if path == "$.schema":
        version = _schema_of(payload)
        if version is not None and version != SCHEMA_VERSION:
            return DecodeError(
                f"unsupported schema version {version!r}; this decoder reads version {SCHEMA_VERSION}",
                topic=topic,
                field=path,
            )
    return DecodeError(reason, topic=topic, field=path)


def _schema_of(payload: bytes) -> object:
    try:
        return _envelope.decode(payload).get("schema")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
