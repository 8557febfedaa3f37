"""The Health message: round trip, strict decoding, UTC normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from misto.protocol import (
    BufferHealth,
    Channel,
    DecodeError,
    DeviceHealth,
    DeviceState,
    Health,
    LinkHealth,
    codec,
    topics,
)

AT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def health(**changes: object) -> Health:
    fields: dict[str, object] = {
        "schema": 1,
        "gateway": "gw-kherson-001",
        "boot": "6650f1a2-ab12cd34",
        "at": AT,
        "uptime_s": 3600.5,
        "cpu_s": 12.25,
        "rss_bytes": 38_000_000,
        "buffer": BufferHealth(
            kind="sqlite", depth=3, bytes=4096, oldest_age_s=12.5, recovered=2, added=100, sent=98,
            rejected=0, dropped=1, dropped_readings=8,
        ),
        "link": LinkHealth(
            connected=True, connects=2, connect_failures=5, disconnects=1, published=99, acknowledged=98
        ),
        "devices": [
            DeviceHealth(
                device="aq-center-1", state=DeviceState.AVAILABLE, polls=360, failures=2, readings=2864,
                suppressed=100, last_latency_ms=12.5, last_success_at=AT, last_error="timeout",
                last_error_at=AT - timedelta(minutes=5), errors={"timeout": 2},
            )
        ],
        "errors": {"timeout": 2},
        "agent_version": "0.1.0",
    }  # fmt: skip
    fields.update(changes)
    return Health(**fields)  # type: ignore[arg-type]


def test_round_trip() -> None:
    message = health()
    topic = topics.build(message.gateway, Channel.HEALTH)
    assert topic == "misto/v1/gw-kherson-001/health"
    assert codec.decode(codec.encode(message), Health, topic=topic) == message


def test_times_are_normalised_to_utc() -> None:
    kyiv = timezone(timedelta(hours=2))
    message = codec.decode(codec.encode(health(at=AT.astimezone(kyiv))), Health)
    assert message.at.utcoffset() == timedelta(0)
    assert message.at == AT


def test_unknown_fields_and_negative_counts_are_refused() -> None:
    payload = codec.encode(health()).replace(b'"uptime_s"', b'"extra":1,"uptime_s"')
    with pytest.raises(DecodeError, match="unknown field `extra`"):
        codec.decode(payload, Health, topic="misto/v1/gw-kherson-001/health")
    negative = codec.encode(health()).replace(b'"depth":3', b'"depth":-3')
    with pytest.raises(DecodeError) as caught:
        codec.decode(negative, Health)
    assert caught.value.field == "$.buffer.depth"


def test_unknown_rss_and_no_devices_are_fine() -> None:
    message = health(rss_bytes=None, devices=[], errors={})
    assert codec.decode(codec.encode(message), Health) == message
