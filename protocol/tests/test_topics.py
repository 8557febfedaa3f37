from __future__ import annotations

import re

import pytest

from misto.protocol import TopicError, topics
from misto.protocol.topics import Channel


@pytest.mark.parametrize("channel", list(Channel))
def test_build_and_parse_round_trip(channel: Channel) -> None:
    topic = topics.build("gw-kherson-001", channel)
    assert topic == f"misto/v1/gw-kherson-001/{channel.value}"
    parsed = topics.parse(topic)
    assert (parsed.gateway_id, parsed.channel) == ("gw-kherson-001", channel)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("misto/v1/gw-1", "expected 4 levels"),
        ("misto/v1/gw-1/telemetry/extra", "expected 4 levels"),
        ("other/v1/gw-1/telemetry", "first level must be 'misto'"),
        ("misto/v2/gw-1/telemetry", "unsupported topic version 'v2'"),
        ("misto/v1/GW-1/telemetry", "gateway id 'GW-1'"),
        ("misto/v1/+/telemetry", "gateway id '+'"),
        ("misto/v1//telemetry", "gateway id ''"),
        ("misto/v1/gw-1/pictures", "unknown channel 'pictures'"),
    ],
)
def test_parse_rejects_with_reason(topic: str, reason: str) -> None:
    with pytest.raises(TopicError, match=re.escape(reason)) as info:
        topics.parse(topic)
    assert info.value.topic == topic


@pytest.mark.parametrize("bad", ["", "-gw", "gw/1", "gw+1", "gw#", "a" * 64, "Gw"])
def test_invalid_gateway_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="gateway id"):
        topics.build(bad, Channel.TELEMETRY)


def test_subscriptions() -> None:
    assert topics.subscription(Channel.TELEMETRY) == "misto/v1/+/telemetry"
    assert topics.subscription(Channel.CONFIG, gateway_id="gw-1") == "misto/v1/gw-1/config"
    assert topics.subscription(Channel.TELEMETRY, share_group="ingest") == "$share/ingest/misto/v1/+/telemetry"
    with pytest.raises(ValueError, match="share group"):
        topics.subscription(Channel.TELEMETRY, share_group="a/b")


def test_directions_cover_every_channel_once() -> None:
    assert set(Channel) == topics.EDGE_TO_CLOUD | topics.CLOUD_TO_EDGE
    assert not topics.EDGE_TO_CLOUD & topics.CLOUD_TO_EDGE
