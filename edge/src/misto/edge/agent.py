"""The composition root: settings -> drivers -> poll coordinator -> buffer -> uplink, plus the
health reporter (health messages, state file).

Nothing here does I/O at construction. :meth:`Agent.run` opens the buffer (recovering what an
earlier run left), starts the uplink, the coordinator and the reporter, and runs until ``stop``
is set; shutting down stops polling, closes the drivers, delivers what can still be delivered,
publishes the offline status, writes the final state file, closes the buffer and disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time

from misto.edge import __version__
from misto.edge.buffer import Buffer, Outbound, make_buffer
from misto.edge.clock import Clock, SystemClock
from misto.edge.control import AgentControl
from misto.edge.drivers import create_driver
from misto.edge.errors import EdgeError
from misto.edge.health import DeviceEntry, HealthReporter, HealthSources
from misto.edge.polling.coordinator import PollCoordinator, PolledDevice
from misto.edge.remote_config.startup import RemoteSetup
from misto.edge.settings import Settings
from misto.edge.uplink.base import Uplink
from misto.edge.uplink.mqtt import MqttUplink
from misto.protocol import Telemetry

log = logging.getLogger("misto.edge.agent")

DRAIN_SECONDS = 5.0


def new_boot_id() -> str:
    """Unique per process start; starts with the start time in hex so boots sort in order."""
    return f"{int(time.time()):x}-{secrets.token_hex(4)}"


class Agent:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        boot: str | None = None,
        remote: RemoteSetup | None = None,
    ) -> None:
        self.settings = settings
        self.remote = remote
        self.clock = clock or SystemClock()
        self.boot = boot or new_boot_id()
        self.buffer: Buffer = make_buffer(settings.buffer, path=settings.buffer_path)
        self.drivers = [create_driver(device, clock=self.clock) for device in settings.devices]
        self.uplink: Uplink = MqttUplink(
            broker=settings.broker,
            gateway_id=settings.gateway_id,
            client_id=settings.client_id,
            boot=self.boot,
            buffer=self.buffer,
            clock=self.clock,
            agent_version=__version__,
            replay_rate=settings.buffer.replay_rate,
        )
        self.coordinator = PollCoordinator(
            gateway_id=settings.gateway_id,
            boot=self.boot,
            devices=[
                PolledDevice(driver, settings.interval_of(device), device.report)
                for driver, device in zip(self.drivers, settings.devices, strict=True)
            ],
            sink=self._enqueue,
            clock=self.clock,
            backoff_max=settings.device_backoff_max,
        )
        self.reporter = HealthReporter(
            HealthSources(
                gateway_id=settings.gateway_id,
                boot=self.boot,
                agent_version=__version__,
                clock=self.clock,
                started=self.clock.monotonic(),
                buffer=self.buffer,
                uplink=self.uplink,
                devices=self.coordinator.health,
                drivers={driver.device_id: driver for driver in self.drivers},
            ),
            health_interval=settings.health_interval,
            state_interval=settings.state_interval,
            state_path=settings.state_file_path,
            devices=[DeviceEntry(d.id, d.driver, settings.interval_of(d)) for d in settings.devices],
            broker_url=settings.broker.url,
            buffer_path=settings.buffer_path if self.buffer.kind == "sqlite" else None,
        )

    async def _enqueue(self, message: Telemetry) -> None:
        try:
            await self.buffer.append(Outbound.telemetry(message))
        except EdgeError as exc:  # the buffer counts and logs drops itself; this is a buffer that is gone
            log.error("cannot buffer %s: %s", message.message_id, exc)
            return
        self.uplink.notify()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or polling fails unexpectedly, which is re-raised)."""
        log.info(
            "gateway %s starting (boot %s, %d device(s), agent %s, %s buffer)",
            self.settings.gateway_id,
            self.boot,
            len(self.drivers),
            __version__,
            self.buffer.kind,
        )
        await self.buffer.open()
        try:
            await self._run_open(stop)
        finally:
            await self.buffer.close()
        stats = self.buffer.stats()
        log.info(
            "gateway %s stopped: %d recovered, %d added, %d sent, %d rejected, %d dropped, %d unsent",
            self.settings.gateway_id,
            stats.recovered,
            stats.added,
            stats.sent,
            stats.rejected,
            stats.dropped,
            stats.depth,
        )

    async def _run_open(self, stop: asyncio.Event) -> None:
        await self.uplink.start()
        poll = asyncio.create_task(self.coordinator.run(), name="poll-coordinator")
        report = asyncio.create_task(self.reporter.run(), name="health-reporter")
        control = asyncio.create_task(self._control_loop(), name="cloud-control")
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
            report.cancel()
            control.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await report
            with contextlib.suppress(asyncio.CancelledError):
                await control
            self.reporter.write_state(stopped=True)
            if failure is not None:
                raise failure

    async def _control_loop(self) -> None:
        """Remote configs and commands from the cloud, one at a time, while polling goes on."""
        await AgentControl(self).serve()


async def run_until_signalled(settings: Settings, *, remote: RemoteSetup | None = None) -> None:
    """Run an :class:`Agent` until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Agent(settings, remote=remote).run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
