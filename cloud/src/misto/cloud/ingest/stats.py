"""Counters of the ingester and of the MQTT link, read by ``GET /health`` (and later ``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from misto.cloud.storage.base import DeadLetterKind


def _per_kind() -> dict[DeadLetterKind, int]:
    return dict.fromkeys(DeadLetterKind, 0)


@dataclass
class IngestStats:
    """Every message received ends up in exactly one of: stored, duplicate, dead-lettered
    (whole message), ignored, or still in flight. Readings are counted separately."""

    messages_received: int = 0
    telemetry_stored: int = 0
    status_stored: int = 0
    status_stale: int = 0  # an older status than the one stored (e.g. a late retained copy)
    health_stored: int = 0  # gateways' health messages kept as their latest
    health_stale: int = 0  # ... and those not newer than the one already stored
    acks_stored: int = 0  # gateways' answers to configurations and commands
    readings_stored: int = 0
    duplicates: int = 0
    decode_errors: int = 0
    ignored: int = 0  # e.g. the empty payload that clears a retained status
    dead_letters: dict[DeadLetterKind, int] = field(default_factory=_per_kind)
    acked: int = 0
    store_retries: int = 0
    internal_errors: int = 0
    connected: bool = False
    connects: int = 0
    connection_failures: int = 0
    subscribe_failures: int = 0
    published: int = 0  # configurations and commands the broker acknowledged
    publish_failures: int = 0  # ... and those it did not (no link, refused, no PUBACK in time)
    last_message_at: datetime | None = None

    def dead_lettered(self, kind: DeadLetterKind, count: int = 1) -> None:
        self.dead_letters[kind] += count

    @property
    def dead_letters_total(self) -> int:
        return sum(self.dead_letters.values())
