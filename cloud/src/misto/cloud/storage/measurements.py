"""Names of the time-series measurements beyond the readings themselves, shared by the stores
that write them and the dashboards that read them (see docs/timeseries-schema.md).

Readings: one measurement per sensor kind (:mod:`misto.cloud.storage.points`).
``gateway_status``: tags ``gateway``; fields ``online`` (1/0 int), ``boot``, ``agent_version``.
``gateway_health``: tags ``gateway``; the fields in :data:`GATEWAY_HEALTH_FIELDS` (numbers) and
``json`` (the whole health message, for the API).
``device_health``: tags ``gateway``, ``device``; the fields in :data:`DEVICE_HEALTH_FIELDS`.
``misto_ingest``: tags ``instance``; the fields of :class:`~misto.cloud.storage.base.IngestSnapshot`.
``misto_dead_letters``: tags ``gateway`` (``-`` if unknown), ``kind``; fields ``topic``, ``reason``,
``field``, ``message_id``, ``payload`` (base64) and ``seq`` (makes same-instant letters distinct).
"""

from __future__ import annotations

from typing import Final

from misto.cloud.storage.base import IngestSnapshot, to_ms
from misto.cloud.storage.line_protocol import line
from misto.protocol import Health

GATEWAY_STATUS: Final = "gateway_status"
GATEWAY_HEALTH: Final = "gateway_health"
DEVICE_HEALTH: Final = "device_health"
INGEST: Final = "misto_ingest"
DEAD_LETTERS: Final = "misto_dead_letters"

GATEWAY_HEALTH_FIELDS: Final = (
    "uptime_s",
    "cpu_s",
    "rss_bytes",
    "buffer_depth",
    "buffer_bytes",
    "buffer_oldest_age_s",
    "buffer_dropped_readings",
    "link_connected",
    "link_connects",
    "link_published",
    "errors_total",
)
DEVICE_HEALTH_FIELDS: Final = (
    "available",
    "polls",
    "failures",
    "readings",
    "suppressed",
    "last_latency_ms",
    "errors_total",
)
INGEST_FIELDS: Final = (
    "messages_in",
    "readings_in",
    "readings_written",
    "rejected",
    "duplicates",
    "store_errors",
    "queue_depth",
    "batch_mean_readings",
    "write_p99_ms",
    "lag_s",
)


def health_lines(health: Health) -> list[str]:
    """``gateway_health`` and one ``device_health`` line per device, at ``health.at``."""
    ts = to_ms(health.at)
    buffer, link = health.buffer, health.link
    gateway_fields: dict[str, float | int | bool | str] = {
        "uptime_s": float(health.uptime_s),
        "cpu_s": float(health.cpu_s),
        "buffer_depth": buffer.depth,
        "buffer_bytes": buffer.bytes,
        "buffer_dropped_readings": buffer.dropped_readings,
        "link_connected": int(link.connected),
        "link_connects": link.connects,
        "link_published": link.published,
        "errors_total": sum(health.errors.values()),
    }
    if health.rss_bytes is not None:
        gateway_fields["rss_bytes"] = health.rss_bytes
    if buffer.oldest_age_s is not None:
        gateway_fields["buffer_oldest_age_s"] = float(buffer.oldest_age_s)
    out = [line(GATEWAY_HEALTH, {"gateway": health.gateway}, gateway_fields, ts)]
    for device in health.devices:
        fields: dict[str, float | int | bool | str] = {
            "available": int(device.state.value == "available"),
            "polls": device.polls,
            "failures": device.failures,
            "readings": device.readings,
            "suppressed": device.suppressed,
            "errors_total": sum(device.errors.values()),
        }
        if device.last_latency_ms is not None:
            fields["last_latency_ms"] = float(device.last_latency_ms)
        out.append(line(DEVICE_HEALTH, {"gateway": health.gateway, "device": device.device}, fields, ts))
    return out


def status_line(gateway: str, *, online: bool, boot: str, agent_version: str, at_ms: int) -> str:
    fields: dict[str, float | int | bool | str] = {"online": int(online), "boot": boot, "agent_version": agent_version}
    return line(GATEWAY_STATUS, {"gateway": gateway}, fields, at_ms)


def ingest_line(snapshot: IngestSnapshot) -> str:
    fields: dict[str, float | int | bool | str] = {name: getattr(snapshot, name) for name in INGEST_FIELDS}
    return line(INGEST, {"instance": snapshot.instance}, fields, to_ms(snapshot.at))
