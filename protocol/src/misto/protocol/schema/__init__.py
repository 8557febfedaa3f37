"""JSON Schemas of the wire messages, generated from the message types.

``python -m misto.protocol.schema DIR`` writes one ``<name>-v1.schema.json`` per message;
the copies kept in this package and in ``docs/protocol.md`` are checked against it by tests.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import msgspec

from misto.protocol.messages import Ack, Command, ConfigUpdate, Health, Status, Telemetry

MESSAGES: dict[str, type[msgspec.Struct]] = {
    "telemetry": Telemetry,
    "status": Status,
    "health": Health,
    "config": ConfigUpdate,
    "cmd": Command,
    "ack": Ack,
}


def generate(name: str) -> dict[str, Any]:
    """The JSON Schema of message ``name`` (a key of :data:`MESSAGES`)."""
    schema = msgspec.json.schema(MESSAGES[name])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://misto.city/schema/{name}-v1.schema.json"
    return schema


def render(name: str) -> str:
    return json.dumps(generate(name), indent=2, sort_keys=True) + "\n"


def shipped(name: str) -> str:
    """The schema file shipped in this package."""
    return resources.files(__package__).joinpath(f"{name}-v1.schema.json").read_text(encoding="utf-8")
