"""Two periodic jobs of the agent: publish gateway health on ``misto/v1/<gw>/health`` every
``health_interval``, and rewrite the state file (and let the buffer expire old entries) every
``state_interval``.

Health is published directly, not through the buffer (best effort, QoS 1): its counters are
cumulative since the agent started, so a message missed during an outage loses resolution, never
counts; buffering it would spend buffer space and replay budget on stale snapshots, and delay the
one that matters, the current state, behind the backlog. When the link is down the job waits for
it and publishes as soon as it is back, so the cloud sees the backlog at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from misto.edge.errors import EdgeError
from misto.edge.health.snapshot import HealthSources, build_health
from misto.edge.health.state_file import AgentState, DeviceInfo, values_of, write_state
from misto.protocol import Channel, codec, topics

log = logging.getLogger("misto.edge.health")


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    id: str
    driver: str
    interval: float


class HealthReporter:
    def __init__(
        self,
        sources: HealthSources,
        *,
        health_interval: float,
        state_interval: float,
        state_path: Path | None,
        devices: Sequence[DeviceEntry],
        broker_url: str,
        buffer_path: Path | None,
    ) -> None:
        self.sources = sources
        self.health_interval = health_interval
        self.state_interval = state_interval
        self.state_path = state_path
        self.devices = list(devices)
        self.broker_url = broker_url
        self.buffer_path = buffer_path
        self.topic = topics.build(sources.gateway_id, Channel.HEALTH)
        self.published = 0
        self._state_failing = False

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._health_loop(), name="health-publisher")
            tasks.create_task(self._state_loop(), name="state-writer")

    async def publish_health(self) -> bool:
        payload = codec.encode(build_health(self.sources))
        sent = await self.sources.uplink.publish_direct(self.topic, payload)
        self.published += sent
        return sent

    async def _health_loop(self) -> None:
        clock = self.sources.clock
        while True:
            await self.sources.uplink.wait_connected()
            try:
                await self.publish_health()
            except Exception:  # a bug here must not stop the agent (nor the next attempt)
                log.exception("cannot publish gateway health")
            await clock.sleep_until(clock.monotonic() + self.health_interval)

    async def _state_loop(self) -> None:
        clock = self.sources.clock
        while True:
            try:
                await self.sources.buffer.trim()
            except EdgeError as exc:
                log.warning("buffer: cannot expire old entries: %s", exc)
            try:
                self.write_state()
            except Exception:  # a bug here must not stop the agent
                log.exception("cannot build the state file")
            await clock.sleep_until(clock.monotonic() + self.state_interval)

    def state(self, *, stopped: bool = False) -> AgentState:
        polled = self.sources.devices
        return AgentState(
            format=1,
            pid=os.getpid(),
            written_at=self.sources.clock.now(),
            interval_s=self.state_interval,
            broker_url=self.broker_url,
            buffer_path=str(self.buffer_path) if self.buffer_path else None,
            health=build_health(self.sources),
            devices=[
                DeviceInfo(
                    id=d.id,
                    driver=d.driver,
                    interval_s=d.interval,
                    values=values_of(d.id, polled[d.id].last_values.values()) if d.id in polled else {},
                )
                for d in self.devices
            ],
            stopped=stopped,
        )

    def write_state(self, *, stopped: bool = False) -> None:
        """Rewrite the state file; a failure is logged once (and its recovery), never fatal."""
        if self.state_path is None:
            return
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            write_state(self.state_path, self.state(stopped=stopped))
        except OSError as exc:
            if not self._state_failing:
                log.warning("cannot write the state file %s: %s", self.state_path, exc)
            self._state_failing = True
        else:
            if self._state_failing:
                log.info("state file %s written again", self.state_path)
            self._state_failing = False
