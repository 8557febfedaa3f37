"""The MQTT topic scheme: ``misto/v1/<gateway_id>/<channel>``.

| channel     | direction   | QoS | retained | payload                    |
|-------------|-------------|-----|----------|----------------------------|
| telemetry   | edge→cloud  | 1   | no       | :class:`Telemetry` batch   |
| status      | edge→cloud  | 1   | yes      | :class:`Status` (also LWT) |
| health      | edge→cloud  | 1   | no       | gateway self-metrics       |
| config      | cloud→edge  | 1   | yes      | :class:`ConfigUpdate`      |
| cmd         | cloud→edge  | 1   | no       | :class:`Command`           |
| ack         | edge→cloud  | 1   | no       | :class:`Ack`               |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from misto.protocol.errors import TopicError

ROOT = "misto"
VERSION = "v1"
GATEWAY_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,62})$"
_GATEWAY_ID = re.compile(GATEWAY_ID_PATTERN)


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"
    HEALTH = "health"
    CONFIG = "config"
    CMD = "cmd"
    ACK = "ack"


EDGE_TO_CLOUD = frozenset({Channel.TELEMETRY, Channel.STATUS, Channel.HEALTH, Channel.ACK})
CLOUD_TO_EDGE = frozenset({Channel.CONFIG, Channel.CMD})


@dataclass(frozen=True, slots=True)
class Topic:
    gateway_id: str
    channel: Channel

    def __post_init__(self) -> None:
        check_gateway_id(self.gateway_id)

    def __str__(self) -> str:
        return f"{ROOT}/{VERSION}/{self.gateway_id}/{self.channel.value}"


def check_gateway_id(gateway_id: str) -> str:
    """Return ``gateway_id`` if it is valid, else raise :class:`ValueError` saying why."""
    if not _GATEWAY_ID.match(gateway_id):
        raise ValueError(
            f"gateway id {gateway_id!r} must be 1-63 characters of a-z, 0-9, '-' or '_', "
            "starting with a letter or digit"
        )
    return gateway_id


def build(gateway_id: str, channel: Channel) -> str:
    """Topic string for one gateway's channel, e.g. ``misto/v1/gw-1/telemetry``."""
    return str(Topic(gateway_id, channel))


def parse(topic: str) -> Topic:
    """Parse a concrete topic (no wildcards) into a :class:`Topic`, or raise :class:`TopicError`."""
    parts = topic.split("/")
    if len(parts) != 4:
        raise TopicError(topic, f"expected 4 levels '{ROOT}/{VERSION}/<gateway_id>/<channel>'")
    root, version, gateway_id, channel = parts
    if root != ROOT:
        raise TopicError(topic, f"first level must be {ROOT!r}")
    if version != VERSION:
        raise TopicError(topic, f"unsupported topic version {version!r}, expected {VERSION!r}")
    try:
        check_gateway_id(gateway_id)
    except ValueError as exc:
        raise TopicError(topic, str(exc)) from None
    try:
        return Topic(gateway_id, Channel(channel))
    except ValueError:
        known = ", ".join(c.value for c in Channel)
        raise TopicError(topic, f"unknown channel {channel!r}, expected one of: {known}") from None


def subscription(channel: Channel, *, gateway_id: str = "+", share_group: str | None = None) -> str:
    """Subscription filter for a channel of one gateway or all (``+``).

    With ``share_group`` it is an MQTT v5 shared subscription ``$share/<group>/...`` so several
    ingesters split the load.
    """
    if gateway_id != "+":
        check_gateway_id(gateway_id)
    flt = f"{ROOT}/{VERSION}/{gateway_id}/{channel.value}"
    if share_group is not None:
        if not share_group or any(c in share_group for c in "/+#"):
            raise ValueError(f"share group {share_group!r} must be non-empty without '/', '+' or '#'")
        flt = f"$share/{share_group}/{flt}"
    return flt
