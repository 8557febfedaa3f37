"""Validation at the door: each reading of a decoded telemetry message is checked against the
metric vocabulary (known metric, its unit, its physical range), the accepted time window (not too
far in the future, not too old) and device ownership (a gateway publishes only for its own
devices). A reading that fails is dead-lettered on its own, with the reason and the JSON path of
the offending field; the message's good readings are stored. Pure computation, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from misto.cloud.ingest.inbound import InboundMessage
from misto.cloud.ingest.ownership import DeviceOwnership, refusal
from misto.cloud.storage.base import DeadLetter, DeadLetterKind, MessageWrite
from misto.protocol import Reading, Telemetry
from misto.protocol.vocabulary import METRICS, check_reading


@dataclass(frozen=True, slots=True)
class Admitted:
    """A telemetry message after the door: what to write, and what was refused (in ``write``)."""

    write: MessageWrite
    newest: datetime | None  # the newest time among the good readings


class Door:
    """The checks of ``ingest.validation``. ``max_future`` / ``max_age`` None: that bound is off;
    ``ownership`` None: any gateway may publish for any device."""

    def __init__(
        self,
        *,
        max_future: timedelta | None = None,
        max_age: timedelta | None = None,
        ownership: DeviceOwnership | None = None,
    ) -> None:
        self.max_future = max_future
        self.max_age = max_age
        self.ownership = ownership

    def admit(self, message: InboundMessage, telemetry: Telemetry, now: datetime) -> Admitted:
        """Split ``telemetry`` (already checked to be from its topic's gateway) into good readings
        and dead letters, judging times against ``now``."""
        gateway = telemetry.gateway
        latest = now + self.max_future if self.max_future is not None else None
        earliest = now - self.max_age if self.max_age is not None else None
        ownership = self.ownership
        good: list[Reading] = []
        letters: list[DeadLetter] = []
        newest: datetime | None = None
        for index, reading in enumerate(telemetry.readings):
            reason = check_reading(reading.metric, reading.unit, reading.value)
            if reason is not None:
                kind, field = DeadLetterKind.VOCABULARY, _offending_field(reading)
            elif latest is not None and reading.ts > latest:
                kind, field = DeadLetterKind.TIMESTAMP, "ts"
                reason = (
                    f"reading time {_iso(reading.ts)} is {_span(reading.ts - now)} ahead of the cloud's clock "
                    f"(ingest.validation.max_future_s allows {_span(latest - now)}): check the gateway's clock"
                )
            elif earliest is not None and reading.ts < earliest:
                kind, field = DeadLetterKind.TIMESTAMP, "ts"
                reason = (
                    f"reading time {_iso(reading.ts)} is {_span(now - reading.ts)} old "
                    f"(ingest.validation.max_age_days allows {_span(now - earliest)})"
                )
            elif ownership is not None and (owner := ownership.claim(reading.device, gateway)) is not None:
                kind, field = DeadLetterKind.DEVICE_OWNER, "device"
                reason = refusal(reading.device, gateway, owner)
            else:
                good.append(reading)
                if newest is None or reading.ts > newest:
                    newest = reading.ts
                continue
            letters.append(
                DeadLetter(
                    received_at=message.received_at,
                    topic=message.topic,
                    kind=kind,
                    reason=reason,
                    payload=reading_json(reading),
                    gateway=gateway,
                    field=f"$.readings[{index}].{field}",
                    message_id=telemetry.message_id,
                )
            )
        return Admitted(MessageWrite(telemetry.message_id, gateway, good, letters), newest)


def _offending_field(reading: Reading) -> str:
    metric = METRICS.get(reading.metric)
    if metric is None:
        return "metric"
    if reading.unit != metric.unit:
        return "unit"
    return "value"


def reading_json(reading: Reading) -> bytes:
    """A refused reading as the dead letter keeps it: the reading's own JSON object."""
    document = {
        "device": reading.device,
        "metric": reading.metric,
        "value": reading.value,
        "unit": reading.unit,
        "ts": _iso(reading.ts),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f}min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f} days"
