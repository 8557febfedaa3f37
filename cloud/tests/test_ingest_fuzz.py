"""Hostile MQTT payloads through the real path: a gateway publishes arbitrary bytes, arbitrary JSON
and corrupted copies of valid messages on its telemetry, status and health topics of a real
Mosquitto; the ingester must take every one (acknowledge it), store what is valid, dead-letter
what is not with its raw payload, never crash and never drop a message silently."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.tests.support import T0, Gateway, RunningIngester, eventually, telemetry
from misto.protocol import codec, topics
from misto.protocol.errors import DecodeError
from misto.protocol.messages import Health, Status
from misto.protocol.topics import Channel

GATEWAY = "gw-test"
VALID = json.loads(codec.encode(telemetry(GATEWAY)))
CHANNELS = (Channel.TELEMETRY, Channel.STATUS, Channel.HEALTH)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _corrupt(document: dict[str, Any], key: str, value: Any) -> bytes:
    return json.dumps({**document, key: value}).encode()


payloads = st.one_of(
    st.binary(min_size=1, max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(_corrupt, st.just(VALID), st.sampled_from(sorted(VALID)), json_values),
)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(st.tuples(st.sampled_from(CHANNELS), payloads), min_size=10, max_size=30))
async def test_every_hostile_payload_is_acknowledged_and_stored_or_dead_lettered(
    ingest: RunningIngester, gw: Gateway, batch: list[tuple[Channel, bytes]]
) -> None:
    stats, store = ingest.stats, ingest.store
    received_before, acked_before = stats.messages_received, stats.acked
    for channel, payload in batch:
        gw.publish(topics.build(GATEWAY, channel), payload)
    # a valid message last: once it is stored, everything before it has been taken
    sentinel = telemetry(GATEWAY, seq=stats.messages_received + 10_000, at=T0)
    gw.send(sentinel)
    expected = received_before + len(batch) + 1
    await eventually(
        lambda: _true(stats.messages_received >= expected and stats.acked >= acked_before + len(batch) + 1),
        what="every hostile message received and acknowledged",
    )
    assert stats.internal_errors == 0
    assert not ingest.task.done(), "the ingester stopped"

    letters = {letter.letter.payload for letter in await store.dead_letters(limit=100_000, gateway=None)}
    for channel, payload in batch:
        if channel is Channel.TELEMETRY and _decodes(payload):
            continue  # a valid message (stored, or its bad readings dead-lettered one by one)
        if channel is not Channel.TELEMETRY and payload == b"":
            continue  # clears a retained status: ignored by design
        assert payload in letters or _decodes_as(payload, channel), (
            f"{channel.value} payload not dead-lettered: {payload!r}"
        )


async def _true(value: bool) -> bool | None:
    return True if value else None


def _decodes(payload: bytes) -> bool:
    try:
        codec.decode_telemetry(payload)
    except DecodeError:
        return False
    return True


def _decodes_as(payload: bytes, channel: Channel) -> bool:
    """A status or health payload that is a valid message of its kind (stored, not dead-lettered)."""
    try:
        if channel is Channel.STATUS:
            codec.decode(payload, Status)
        else:
            codec.decode(payload, Health)
    except DecodeError:
        return False
    return True
