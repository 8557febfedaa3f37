"""Golden test vectors: payloads on disk with the decoded result or the exact error expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from misto.protocol import DecodeError, codec
from misto.protocol.codec import MAX_PAYLOAD_BYTES

VECTORS = Path(__file__).parent / "vectors"
MANIFEST: list[dict[str, Any]] = json.loads((VECTORS / "manifest.json").read_text(encoding="utf-8"))
TOPIC = "misto/v1/gw-1/telemetry"


@pytest.mark.parametrize("vector", MANIFEST, ids=[v["file"] for v in MANIFEST])
def test_vector(vector: dict[str, Any]) -> None:
    payload = (VECTORS / vector["file"]).read_bytes()
    if "error" in vector:
        with pytest.raises(DecodeError) as info:
            codec.decode_telemetry(payload, topic=TOPIC)
        assert info.value.field == vector["error"]["field"]
        assert vector["error"]["reason"] in info.value.reason
        assert info.value.topic == TOPIC
        assert TOPIC in str(info.value)
        return
    message = codec.decode_telemetry(payload, topic=TOPIC)
    expect = vector["expect"]
    assert message.message_id == expect["message_id"]
    assert len(message.readings) == expect["readings"]
    first = message.readings[0]
    assert {
        "device": first.device,
        "metric": first.metric,
        "value": first.value,
        "unit": first.unit,
        "ts": first.ts.isoformat(),
    } == expect["first"]
    if vector.get("canonical"):
        assert codec.encode(message) == payload, "encoding of the canonical vector changed: a wire change"


def test_every_vector_file_is_in_the_manifest() -> None:
    listed = {v["file"] for v in MANIFEST}
    on_disk = {p.name for p in VECTORS.iterdir()} - {"manifest.json"}
    assert on_disk == listed


def test_oversize_payload_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match=f"exceeds the {MAX_PAYLOAD_BYTES}-byte limit"):
        codec.decode_telemetry(b" " * (MAX_PAYLOAD_BYTES + 1), topic=TOPIC)


def test_timestamps_are_normalised_to_utc() -> None:
    message = codec.decode_telemetry((VECTORS / "offset-time.json").read_bytes())
    assert message.sent_at.utcoffset() is not None
    assert message.sent_at.isoformat() == "2026-11-27T08:00:00+00:00"
