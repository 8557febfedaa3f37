"""Hostile MQTT payloads: whatever bytes arrive, decoding either gives a valid message or raises
:class:`DecodeError` naming the JSON path of what was wrong and the topic; never another
exception. Valid messages survive a round trip unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from misto.protocol.codec import decode, decode_telemetry, encode
from misto.protocol.errors import DecodeError
from misto.protocol.messages import Ack, Command, ConfigUpdate, Health, Reading, Status, Telemetry

TOPIC = "misto/v1/gw-kherson-001/telemetry"
CANONICAL: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "canonical.json").read_text())
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _refusal(payload: bytes, cls: type[Any]) -> DecodeError | None:
    """None if ``payload`` decodes into ``cls``; otherwise the refusal (any other exception fails)."""
    try:
        decode(payload, cls, topic=TOPIC)
    except DecodeError as exc:
        return exc
    return None


def _decodes_or_explains(payload: bytes, cls: type[Any]) -> None:
    refusal = _refusal(payload, cls)
    if refusal is not None:
        assert refusal.topic == TOPIC
        assert refusal.field.startswith("$"), refusal.field
        assert refusal.reason, "a refusal must say why"
        assert TOPIC in str(refusal)


@FUZZ
@given(payload=st.binary(max_size=512))
def test_any_bytes_decode_or_are_refused_with_a_reason(payload: bytes) -> None:
    for cls in (Telemetry, Status, Health, ConfigUpdate, Command, Ack):
        _decodes_or_explains(payload, cls)


@FUZZ
@given(document=json_values)
def test_any_json_document_decodes_or_is_refused_with_a_reason(document: Any) -> None:
    payload = json.dumps(document).encode()
    for cls in (Telemetry, Status, Health, ConfigUpdate, Command, Ack):
        _decodes_or_explains(payload, cls)


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


CANONICAL_PATHS = _paths(CANONICAL)


def _replace(node: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {k: (_replace(v, rest, value) if k == head else v) for k, v in node.items()}
    return [_replace(v, rest, value) if i == head else v for i, v in enumerate(node)]


def _json_path(path: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


@FUZZ
@given(path=st.sampled_from(CANONICAL_PATHS), value=json_values)
def test_a_corrupted_field_of_a_valid_message_is_named(path: tuple[str | int, ...], value: Any) -> None:
    refusal = _refusal(json.dumps(_replace(CANONICAL, path, value)).encode(), Telemetry)
    if refusal is not None:
        # the refusal names the corrupted field, a field inside it or one holding it (or the
        # whole payload): never a field elsewhere in the message
        where, field = _json_path(path), refusal.field
        assert field == "$" or field.startswith(where) or where.startswith(field), (where, refusal)


@FUZZ
@given(path=st.sampled_from(CANONICAL_PATHS))
def test_a_missing_field_is_named(path: tuple[str | int, ...]) -> None:
    parent, last = path[:-1], path[-1]
    if not isinstance(last, str):
        return
    document = json.loads(json.dumps(CANONICAL))
    node = document
    for part in parent:
        node = node[part]
    del node[last]
    with pytest.raises(DecodeError) as caught:
        decode_telemetry(json.dumps(document).encode(), topic=TOPIC)
    assert last in caught.value.reason or caught.value.field.endswith(str(last)), caught.value


devices = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)
metrics = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
)
readings = st.builds(
    Reading,
    device=devices,
    metric=metrics,
    value=st.floats(allow_nan=False, allow_infinity=False),
    unit=st.text(min_size=1, max_size=16),
    ts=times,
)


@FUZZ
@given(
    items=st.lists(readings, min_size=1, max_size=20),
    seq=st.integers(min_value=0, max_value=2**53),
    sent=times,
)
def test_valid_telemetry_round_trips(items: list[Reading], seq: int, sent: datetime) -> None:
    message = Telemetry(schema=1, gateway="gw-kherson-001", boot="b7Qk2mXa", seq=seq, sent_at=sent, readings=items)
    assert decode_telemetry(encode(message), topic=TOPIC) == message
