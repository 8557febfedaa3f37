"""Gateway health as a protocol :class:`~misto.protocol.Health` message, built from the agent's parts:
the poll coordinator's per-device health, the buffer's statistics, the uplink's link state and
counters, and the process's own CPU time and memory."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from misto.edge.buffer.base import Buffer
from misto.edge.clock import Clock
from misto.edge.health.process import cpu_seconds, rss_bytes
from misto.edge.polling.health import DeviceHealth as PolledHealth
from misto.edge.uplink.base import Uplink
from misto.protocol import BufferHealth, DeviceHealth, Health, LinkHealth
from misto.protocol.messages import MAX_HEALTH_DEVICES

log = logging.getLogger("misto.edge.health")
_COUNTER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@runtime_checkable
class CountingDriver(Protocol):
    """An optional ability of a driver: its own counters (requests, retries, CRC errors, exception
    responses by code, ...), reported per device in health as ``counters``. Names are lower-case
    ``a-z0-9_`` (up to 32 characters); values whole numbers."""

    def health_counters(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class HealthSources:
    """What a health snapshot is read from (all owned by the agent)."""

    gateway_id: str
    boot: str
    agent_version: str
    clock: Clock
    started: float
    """The agent's start on ``clock.monotonic()``."""
    buffer: Buffer
    uplink: Uplink
    devices: Mapping[str, PolledHealth]
    drivers: Mapping[str, object] = field(default_factory=dict)
    """device id -> its driver, for the drivers that can report their own counters."""


def driver_counters(driver: object) -> dict[str, int]:
    if not isinstance(driver, CountingDriver):
        return {}
    try:
        counters = {str(name): int(value) for name, value in driver.health_counters().items()}
    except Exception:  # a driver's bug must not cost the gateway its health report
        log.exception("cannot read the counters of driver %r", driver)
        return {}
    bad = sorted(name for name, value in counters.items() if not _COUNTER_NAME.match(name) or value < 0)
    if bad:  # the cloud would refuse the whole message: leave them out, and say so
        log.warning("driver %r reports counters health cannot carry (names a-z0-9_, values >= 0): %s", driver, bad)
    return {name: value for name, value in counters.items() if name not in bad}


def device_health(health: PolledHealth, driver: object = None) -> DeviceHealth:
    return DeviceHealth(
        device=health.device_id,
        state=health.state,
        polls=health.reads_total,
        failures=health.failures_total,
        readings=health.readings_total,
        suppressed=health.suppressed_total,
        last_latency_ms=None if health.last_latency is None else round(health.last_latency * 1000, 3),
        last_success_at=health.last_success_at,
        last_error=health.last_error_kind,
        last_error_at=health.last_error_at,
        errors=dict(health.errors),
        counters=driver_counters(driver),
    )


def buffer_health(buffer: Buffer, now: float) -> BufferHealth:
    stats = buffer.stats()
    oldest_age = None if stats.oldest_created is None else round(max(0.0, now - stats.oldest_created), 3)
    return BufferHealth(
        kind=buffer.kind,
        depth=stats.depth,
        bytes=stats.bytes,
        oldest_age_s=oldest_age,
        recovered=stats.recovered,
        added=stats.added,
        sent=stats.sent,
        rejected=stats.rejected,
        dropped=stats.dropped,
        dropped_readings=stats.dropped_readings,
    )


def link_health(uplink: Uplink) -> LinkHealth:
    stats = uplink.stats
    return LinkHealth(
        connected=uplink.connected,
        connects=stats.connects,
        connect_failures=stats.connect_failures,
        disconnects=stats.disconnects,
        published=stats.published,
        acknowledged=stats.acknowledged,
    )


def build_health(sources: HealthSources) -> Health:
    now = sources.clock.now()
    devices = [device_health(h, sources.drivers.get(device)) for device, h in sources.devices.items()]
    if len(devices) > MAX_HEALTH_DEVICES:
        log.warning("health lists the first %d of %d devices", MAX_HEALTH_DEVICES, len(devices))
        devices = devices[:MAX_HEALTH_DEVICES]
    errors: Counter[str] = Counter()
    for health in sources.devices.values():
        errors.update(health.errors)
    if write_errors := sources.buffer.stats().write_errors:
        errors["buffer_write"] = write_errors
    return Health(
        schema=1,
        gateway=sources.gateway_id,
        boot=sources.boot,
        at=now,
        uptime_s=round(max(0.0, sources.clock.monotonic() - sources.started), 3),
        cpu_s=round(cpu_seconds(), 3),
        rss_bytes=rss_bytes(),
        buffer=buffer_health(sources.buffer, now.timestamp()),
        link=link_health(sources.uplink),
        devices=devices,
        errors=dict(errors),
        agent_version=sources.agent_version,
    )
