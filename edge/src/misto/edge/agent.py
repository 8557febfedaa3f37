"""The composition root: settings -> drivers -> poll coordinator -> buffer -> uplink.

Nothing here does I/O at construction. :meth:`Agent.run` starts the uplink and the coordinator
and runs until ``stop`` is set; shutting down stops polling, closes the drivers, delivers what can
still be delivered, publishes the offline status and disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import time

from misto.edge import __version__
from misto.edge.buffer import Buffer, MemoryBuffer, Outbound
from misto.edge.clock import Clock, SystemClock
from misto.edge.drivers import create_driver
from misto.edge.polling.coordinator import PollCoordinator, PolledDevice
from misto.edge.settings import BufferSettings, Settings
from misto.edge.uplink.base import Uplink
from misto.edge.uplink.mqtt import MqttUplink
from misto.protocol import Telemetry

log = logging.getLogger("misto.edge.agent")

DRAIN_SECONDS = 5.0


def new_boot_id() -> str:
    """Unique per process start; starts with the start time in hex so boots sort in order."""
    return f"{int(time.time()):x}-{secrets.token_hex(4)}"


def make_buffer(settings: BufferSettings) -> Buffer:
    match settings.kind:
        case "memory":
            return MemoryBuffer(max_messages=settings.max_messages)


class Agent:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, boot: str | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.boot = boot or new_boot_id()
        self.buffer = make_buffer(settings.buffer)
        self.drivers = [create_driver(device, clock=self.clock) for device in settings.devices]
        self.uplink: Uplink = MqttUplink(
            broker=settings.broker,
            gateway_id=settings.gateway_id,
            client_id=settings.client_id,
            boot=self.boot,
            buffer=self.buffer,
            clock=self.clock,
            agent_version=__version__,
        )
        self.coordinator = PollCoordinator(
            gateway_id=settings.gateway_id,
            boot=self.boot,
            devices=[
                PolledDevice(driver, settings.interval_of(device))
                for driver, device in zip(self.drivers, settings.devices, strict=True)
            ],
            sink=self._enqueue,
            clock=self.clock,
            backoff_max=settings.device_backoff_max,
        )

    async def _enqueue(self, message: Telemetry) -> None:
        await self.buffer.append(Outbound.telemetry(message))
        self.uplink.notify()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or polling fails unexpectedly, which is re-raised)."""
        log.info(
            "gateway %s starting (boot %s, %d device(s), agent %s)",
            self.settings.gateway_id,
            self.boot,
            len(self.drivers),
            __version__,
        )
        await self.uplink.start()
        poll = asyncio.create_task(self.coordinator.run(), name="poll-coordinator")
        stopped = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            log.info("gateway %s stopping", self.settings.gateway_id)
            stopped.cancel()
            poll.cancel()
            failure: Exception | None = None
            try:
                await poll  # the coordinator closes the drivers
            except asyncio.CancelledError:
                pass
            except Exception as exc:
                log.exception("polling failed")
                failure = exc
            await self.uplink.stop(drain_timeout=DRAIN_SECONDS)
            await self.buffer.close()
            stats = self.buffer.stats()
            log.info(
                "gateway %s stopped: %d added, %d sent, %d rejected, %d dropped, %d unsent",
                self.settings.gateway_id,
                stats.added,
                stats.sent,
                stats.rejected,
                stats.dropped,
                stats.depth,
            )
            if failure is not None:
                raise failure


async def run_until_signalled(settings: Settings) -> None:
    """Run an :class:`Agent` until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Agent(settings).run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
