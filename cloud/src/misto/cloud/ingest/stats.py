"""Counters and gauges of the ingester and of the MQTT link, read by ``GET /health``,
``GET /api/v1/ingest``, ``/metrics`` and the periodic ``misto_ingest`` snapshot.

Plain numbers only: the Prometheus adapter (``api/routes/metrics.py``) reads them at scrape time,
so the hot path pays an integer addition per event and no metrics library.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from misto.cloud.storage.base import DeadLetterKind, IngestSnapshot

#: Bounds of the batch-size histogram (readings per store write).
BATCH_READINGS_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000)
#: Bounds of the write-latency histogram (seconds per store write).
WRITE_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Gateway key of what was rejected before its gateway was known (a topic outside the scheme).
UNKNOWN_GATEWAY = "-"
_RECENT_WRITES = 4096


def _per_kind() -> dict[DeadLetterKind, int]:
    return dict.fromkeys(DeadLetterKind, 0)


class Backlog(Protocol):
    """What waits between the broker and the ingester (the adapter's inbound queue)."""

    def depth(self) -> int: ...

    def oldest_received_at(self) -> datetime | None: ...


@dataclass
class Histogram:
    """Cumulative counts per upper bound, as Prometheus histograms are (the last bucket is +Inf)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= bound)`` pairs, ending with ``(inf, count)``."""
        running = 0
        pairs: list[tuple[float, int]] = []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs


@dataclass
class IngestStats:
    """Every message received ends up in exactly one of: stored, duplicate, dead-lettered
    (whole message), ignored, or still in flight. Readings are counted separately: every reading
    received is written or rejected (dead-lettered with a reason), or belongs to a duplicate."""

    messages_received: int = 0
    telemetry_stored: int = 0
    status_stored: int = 0
    status_stale: int = 0  # an older status than the one stored (e.g. a late retained copy)
    health_stored: int = 0  # gateways' health messages kept as their latest
    health_stale: int = 0  # ... and those not newer than the one already stored
    acks_stored: int = 0  # gateways' answers to configurations and commands
    readings_received: int = 0  # in decoded telemetry messages, duplicates included
    readings_stored: int = 0
    duplicates: int = 0
    decode_errors: int = 0
    ignored: int = 0  # e.g. the empty payload that clears a retained status
    dead_letters: dict[DeadLetterKind, int] = field(default_factory=_per_kind)
    rejected_by_gateway: dict[str, dict[DeadLetterKind, int]] = field(default_factory=dict)
    acked: int = 0
    store_retries: int = 0
    store_errors: int = 0  # failed store calls, retried or not
    internal_errors: int = 0
    batches: int = 0
    batch_readings: Histogram = field(default_factory=lambda: Histogram(BATCH_READINGS_BUCKETS))
    write_seconds: Histogram = field(default_factory=lambda: Histogram(WRITE_SECONDS_BUCKETS))
    recent_write_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=_RECENT_WRITES))
    newest_reading_at: datetime | None = None  # the newest reading time written
    processing_since: datetime | None = None  # receive time of the oldest message of the batch in hand
    backlog: Backlog | None = None  # set by the message source
    receive_maximum: int | None = None  # unacknowledged messages the broker may send us (MQTT 5)
    connected: bool = False
    connects: int = 0
    connection_failures: int = 0
    subscribe_failures: int = 0
    published: int = 0  # configurations and commands the broker acknowledged
    publish_failures: int = 0  # ... and those it did not (no link, refused, no PUBACK in time)
    last_message_at: datetime | None = None
    _snapshot_marks: tuple[int, int] = (0, 0)  # batches and readings at the previous snapshot

    def dead_lettered(self, kind: DeadLetterKind, count: int = 1, *, gateway: str | None = None) -> None:
        self.dead_letters[kind] += count
        per_gateway = self.rejected_by_gateway.get(gateway or UNKNOWN_GATEWAY)
        if per_gateway is None:
            per_gateway = self.rejected_by_gateway[gateway or UNKNOWN_GATEWAY] = _per_kind()
        per_gateway[kind] += count

    @property
    def dead_letters_total(self) -> int:
        return sum(self.dead_letters.values())

    def wrote(self, readings: int, seconds: float) -> None:
        """One store write of ``readings`` readings that took ``seconds``."""
        self.batches += 1
        self.batch_readings.observe(readings)
        self.write_seconds.observe(seconds)
        self.recent_write_seconds.append(seconds)

    def queue_depth(self) -> int:
        return self.backlog.depth() if self.backlog is not None else 0

    def lag_s(self, now: datetime) -> float:
        """Now minus the receive time of the oldest message not yet acknowledged (0 if none)."""
        candidates = [self.processing_since]
        if self.backlog is not None:
            candidates.append(self.backlog.oldest_received_at())
        oldest = min((c for c in candidates if c is not None), default=None)
        return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0

    def reading_age_s(self, now: datetime) -> float | None:
        """Now minus the newest reading time written (None before the first write)."""
        if self.newest_reading_at is None:
            return None
        return (now - self.newest_reading_at).total_seconds()

    def snapshot(self, instance: str, now: datetime) -> IngestSnapshot:
        """The counters now, with the mean batch and p99 write latency since the previous snapshot."""
        batches, readings = self._snapshot_marks
        new_batches = self.batches - batches
        new_readings = int(self.batch_readings.total) - readings
        self._snapshot_marks = (self.batches, int(self.batch_readings.total))
        recent = sorted(self.recent_write_seconds)
        self.recent_write_seconds.clear()
        p99 = recent[min(len(recent) - 1, math.ceil(0.99 * len(recent)) - 1)] if recent else 0.0
        return IngestSnapshot(
            instance=instance,
            at=now,
            messages_in=self.messages_received,
            readings_in=self.readings_received,
            readings_written=self.readings_stored,
            rejected=self.dead_letters_total,
            duplicates=self.duplicates,
            store_errors=self.store_errors,
            queue_depth=self.queue_depth(),
            batch_mean_readings=new_readings / new_batches if new_batches else 0.0,
            write_p99_ms=p99 * 1000.0,
            lag_s=self.lag_s(now),
        )
