"""A whole simulated city, poll cycle by poll cycle: each gateway polls its devices, batches the
readings into :class:`~misto.protocol.Telemetry` messages, reports its :class:`~misto.protocol.Health`
and its :class:`~misto.protocol.Status`, exactly as the edge agent does on the wire.

Things go wrong as they do in a city: a poll times out now and then, a device goes silent for a
while (dropout), a gateway loses its uplink (outage) and keeps polling into its store-and-forward
buffer, then sends the backlog when the link is back (late messages keep their readings' times).

Everything is drawn from generators seeded by ``spec.seed`` and the names of the gateways and
devices: the same spec and start give the same messages, byte for byte.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from misto.protocol import (
    BufferHealth,
    Channel,
    DeviceHealth,
    DeviceState,
    GatewayState,
    Health,
    LinkHealth,
    Reading,
    Status,
    Telemetry,
    encode,
)
from misto.protocol.topics import build as topic_for
from misto.sim.city.sensors import Sensor, sensor_for
from misto.sim.city.spec import CitySpec, DevicePlan, GatewayPlan, Transport, layout

CityMessage = Telemetry | Health | Status

_LATENCY_MS = {Transport.TCP: 4.0, Transport.RTU: 28.0, Transport.HTTP: 12.0}
_ERRORS = {Transport.TCP: ("timeout", "connection"), Transport.RTU: ("timeout", "crc"), Transport.HTTP: ("timeout",)}
_DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Tick:
    """What the city sends in the poll cycle at ``at``: status changes, the telemetry delivered
    now (a gateway back from an outage delivers its backlog here) and health reports."""

    at: datetime
    status: tuple[Status, ...]
    telemetry: tuple[Telemetry, ...]
    health: tuple[Health, ...]

    def messages(self) -> Iterator[tuple[str, CityMessage]]:
        """``(topic, message)`` in publishing order: status, telemetry, health."""
        for status in self.status:
            yield topic_for(status.gateway, Channel.STATUS), status
        for message in self.telemetry:
            yield topic_for(message.gateway, Channel.TELEMETRY), message
        for health in self.health:
            yield topic_for(health.gateway, Channel.HEALTH), health

    @property
    def readings(self) -> int:
        return sum(len(m.readings) for m in self.telemetry)


@dataclass(slots=True)
class _Device:
    plan: DevicePlan
    sensor: Sensor
    rng: random.Random
    polls: int = 0
    failures: int = 0
    readings: int = 0
    dropout_until: datetime | None = None
    last_latency_ms: float | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    errors: Counter[str] = field(default_factory=Counter)

    def health(self) -> DeviceHealth:
        ok = self.last_error_at is None or (
            self.last_success_at is not None and self.last_success_at > self.last_error_at
        )
        return DeviceHealth(
            device=self.plan.id,
            state=DeviceState.STARTING
            if self.polls == 0
            else (DeviceState.AVAILABLE if ok else DeviceState.UNAVAILABLE),
            polls=self.polls,
            failures=self.failures,
            readings=self.readings,
            suppressed=0,
            last_latency_ms=self.last_latency_ms,
            last_success_at=self.last_success_at,
            last_error=self.last_error,
            last_error_at=self.last_error_at,
            errors=dict(self.errors),
            counters={"requests": self.polls},
        )


@dataclass(slots=True)
class _Gateway:
    plan: GatewayPlan
    devices: list[_Device]
    rng: random.Random
    boot: str
    seq: int = 0
    outage_until: datetime | None = None
    buffered: list[tuple[Telemetry, int]] = field(default_factory=list)  # message, encoded size
    added: int = 0
    sent: int = 0
    connects: int = 1
    connect_failures: int = 0
    disconnects: int = 0
    cpu_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)


class City:
    """The city of ``spec``, starting at ``start`` (an aware datetime; the agents boot then).

    :meth:`ticks` yields one :class:`Tick` per poll interval; a :class:`City` moves forward only,
    so make a new one to replay. For a live feed, publish each tick when a clock reaches
    ``tick.at``; for a backfill, publish them as fast as they come."""

    def __init__(self, spec: CitySpec, *, start: datetime) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be an aware datetime, got naive {start.isoformat()}")
        self.spec = spec
        self.start = start
        self.gateways = layout(spec)
        self._step = timedelta(seconds=spec.poll_interval_s)
        self._index = 0
        boot = f"city{spec.seed}-{int(start.timestamp())}"
        self._gateways = [
            _Gateway(
                plan=gw,
                devices=[
                    _Device(
                        plan=dev,
                        sensor=sensor_for(dev, seed=spec.seed, period_s=spec.poll_interval_s),
                        rng=random.Random(f"{spec.seed}/{dev.id}/faults"),  # noqa: S311 - simulation
                    )
                    for dev in gw.devices
                ],
                rng=random.Random(f"{spec.seed}/{gw.id}/link"),  # noqa: S311 - simulation
                boot=boot,
            )
            for gw in self.gateways
        ]

    @property
    def devices(self) -> tuple[DevicePlan, ...]:
        return tuple(dev for gw in self.gateways for dev in gw.devices)

    @property
    def next_at(self) -> datetime:
        return self.start + self._index * self._step

    def ticks(self, end: datetime | None = None) -> Iterator[Tick]:
        """Poll cycles from the next one on, up to (not including) ``end``; forever without it."""
        while end is None or self.next_at < end:
            yield self.tick()

    def messages(self, end: datetime | None = None) -> Iterator[tuple[str, CityMessage]]:
        """``(topic, message)`` of every tick up to ``end``, in publishing order."""
        for tick in self.ticks(end):
            yield from tick.messages()

    def tick(self) -> Tick:
        at = self.next_at
        with_health = self._index % self.spec.health_every == 0
        self._index += 1
        statuses: list[Status] = []
        telemetry: list[Telemetry] = []
        health: list[Health] = []
        for gw in self._gateways:
            if at == self.start:
                statuses.append(self._status(gw, GatewayState.ONLINE, at))
            self._link(gw, at, statuses, telemetry)
            messages = self._poll(gw, at)
            if gw.outage_until is None:
                telemetry.extend(messages)
                gw.sent += len(messages)
            else:
                gw.buffered.extend((m, len(encode(m))) for m in messages)
            gw.added += len(messages)
            if with_health:
                health.append(self._health(gw, at))
        return Tick(at, tuple(statuses), tuple(telemetry), tuple(health))

    def _status(self, gw: _Gateway, state: GatewayState, at: datetime) -> Status:
        return Status(
            schema=1, gateway=gw.plan.id, state=state, boot=gw.boot, at=at, agent_version=self.spec.agent_version
        )

    def _link(self, gw: _Gateway, at: datetime, statuses: list[Status], telemetry: list[Telemetry]) -> None:
        """Start or end an outage; on recovery deliver the backlog (oldest first)."""
        if gw.outage_until is not None:
            if at < gw.outage_until:
                gw.connect_failures += 1
                gw.errors["connection"] += 1
                return
            gw.outage_until = None
            gw.connects += 1
            statuses.append(self._status(gw, GatewayState.ONLINE, at))
            telemetry.extend(m for m, _ in gw.buffered)
            gw.sent += len(gw.buffered)
            gw.buffered.clear()
        chance = self.spec.outages_per_day * self.spec.poll_interval_s / _DAY_S
        if gw.rng.random() < chance:
            gw.outage_until = at + timedelta(minutes=gw.rng.uniform(10.0, 45.0))
            gw.disconnects += 1
            statuses.append(self._status(gw, GatewayState.OFFLINE, at))  # the broker's last will

    def _poll(self, gw: _Gateway, at: datetime) -> list[Telemetry]:
        """Poll every device once; batch the readings into messages of at most ``max_readings``."""
        spec = self.spec
        dropout_chance = spec.dropouts_per_day * spec.poll_interval_s / _DAY_S
        batches: list[list[Reading]] = [[]]
        for dev in gw.devices:
            dev.polls += 1
            rng = dev.rng
            transport = dev.plan.transport
            if dev.dropout_until is not None and at >= dev.dropout_until:
                dev.dropout_until = None
            u = rng.random()
            if dev.dropout_until is None and u < dropout_chance:
                dev.dropout_until = at + timedelta(minutes=rng.uniform(15.0, 120.0))
            if dev.dropout_until is not None or u < dropout_chance + spec.poll_failure_rate:
                kind = "timeout" if dev.dropout_until is not None else rng.choice(_ERRORS[transport])
                dev.failures += 1
                dev.errors[kind] += 1
                gw.errors[kind] += 1
                dev.last_error, dev.last_error_at = kind, at
                continue
            latency = _LATENCY_MS[transport] * (0.6 + 0.8 * rng.random())
            readings = dev.sensor.read(at + timedelta(milliseconds=round(latency)))
            dev.readings += len(readings)
            dev.last_latency_ms = round(latency, 2)
            dev.last_success_at = at
            if len(batches[-1]) + len(readings) > spec.max_readings:
                batches.append([])
            batches[-1].extend(readings)
        gw.cpu_s += 0.0015 * len(gw.devices) + 0.004 * len(batches)
        sent_at = at + timedelta(seconds=1)
        out: list[Telemetry] = []
        for batch in batches:
            if batch:
                out.append(
                    Telemetry(schema=1, gateway=gw.plan.id, boot=gw.boot, seq=gw.seq, sent_at=sent_at, readings=batch)
                )
                gw.seq += 1
        return out

    def _health(self, gw: _Gateway, at: datetime) -> Health:
        depth = len(gw.buffered)
        oldest = (at - gw.buffered[0][0].sent_at).total_seconds() if gw.buffered else None
        connected = gw.outage_until is None
        return Health(
            schema=1,
            gateway=gw.plan.id,
            boot=gw.boot,
            at=at,
            uptime_s=(at - self.start).total_seconds(),
            cpu_s=round(gw.cpu_s, 3),
            rss_bytes=38_000_000 + 60_000 * len(gw.devices) + sum(size for _, size in gw.buffered),
            buffer=BufferHealth(
                kind="sqlite",
                depth=depth,
                bytes=sum(size for _, size in gw.buffered),
                oldest_age_s=max(oldest, 0.0) if oldest is not None else None,
                recovered=0,
                added=gw.added,
                sent=gw.sent,
                rejected=0,
                dropped=0,
                dropped_readings=0,
            ),
            link=LinkHealth(
                connected=connected,
                connects=gw.connects,
                connect_failures=gw.connect_failures,
                disconnects=gw.disconnects,
                published=gw.sent,
                acknowledged=gw.sent,
            ),
            devices=[dev.health() for dev in gw.devices],
            errors=dict(gw.errors),
            agent_version=self.spec.agent_version,
        )
