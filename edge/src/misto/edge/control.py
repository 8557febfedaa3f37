"""The agent's side of cloud control: takes config and cmd messages off the uplink, applies
remote configs (only the changed devices restart) and runs commands, acknowledging each.

It is the :class:`ConfigApplier` and :class:`CommandTarget` of the agent, kept out of
:mod:`misto.edge.agent` so the composition root stays a composition root.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from misto.edge.commands import CommandRejected, execute
from misto.edge.drivers import create_driver
from misto.edge.drivers.base import Driver
from misto.edge.errors import DriverError
from misto.edge.health import DeviceEntry
from misto.edge.polling.coordinator import PolledDevice
from misto.edge.registers.spec import RegisterSpec
from misto.edge.remote_config.diff import plan_changes
from misto.edge.remote_config.manager import RemoteConfigManager
from misto.edge.settings import Settings
from misto.protocol import Ack, Channel, Command, DecodeError, TopicError, codec, topics

if TYPE_CHECKING:
    from misto.edge.agent import Agent

log = logging.getLogger("misto.edge.control")


class AgentControl:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.ack_topic = topics.build(agent.settings.gateway_id, Channel.ACK)
        remote = agent.remote
        self.config: RemoteConfigManager | None = None
        if remote is not None:
            self.config = RemoteConfigManager(
                gateway_id=agent.settings.gateway_id,
                local=remote.local,
                base_dir=remote.base_dir,
                current=agent.settings,
                applied_version=remote.version,
                last_good=remote.last_good,
                applier=self,
                send_ack=self.send_ack,
                clock=agent.clock,
            )

    async def serve(self) -> None:
        while True:
            topic, payload = await self.agent.uplink.inbound.get()
            try:
                channel = topics.parse(topic).channel
            except TopicError as exc:
                log.error("message on an unexpected topic: %s", exc)
                continue
            if channel is Channel.CONFIG:
                if self.config is None:
                    log.warning("remote config received but this agent runs without remote config (no local file)")
                    continue
                await self.config.handle(topic, payload)
            elif channel is Channel.CMD:
                await self._command(topic, payload)

    async def _command(self, topic: str, payload: bytes) -> None:
        try:
            command = codec.decode(payload, Command, topic=topic)
        except DecodeError as exc:
            log.error("command refused: %s", exc)  # no id to acknowledge
            return
        ack = await execute(command, self, gateway=self.agent.settings.gateway_id, clock=self.agent.clock)
        await self.send_ack(ack)

    async def send_ack(self, ack: Ack) -> None:
        if not await self.agent.uplink.publish_direct(self.ack_topic, codec.encode(ack)):
            log.warning("could not send the ack of %s (%s): the broker link is down", ack.ref, ack.result)

    # -- ConfigApplier ---------------------------------------------------------------------------

    async def apply_settings(self, settings: Settings) -> None:
        agent = self.agent
        if settings == agent.settings:
            return
        changes = plan_changes(agent.settings, settings)
        created = {d.id: create_driver(d, clock=agent.clock) for d in settings.devices if d.id in changes.restarts}
        current = {driver.device_id: driver for driver in agent.drivers}
        drivers = [created.get(d.id) or current[d.id] for d in settings.devices]
        retire = [current[i] for i in (*changes.removed, *changes.changed)]
        await agent.coordinator.reconfigure(
            _polled(drivers, settings),
            retire=retire,
        )
        agent.drivers = drivers
        agent.settings = settings
        agent.reporter.devices = [DeviceEntry(d.id, d.driver, settings.interval_of(d)) for d in settings.devices]
        logging.getLogger("misto").setLevel(settings.log_level.upper())

    # -- CommandTarget ---------------------------------------------------------------------------

    def _driver(self, device: str) -> Driver:
        for driver in self.agent.drivers:
            if driver.device_id == device:
                return driver
        raise CommandRejected(f"no device {device!r} on this gateway")

    async def poll_now(self, device: str | None) -> int:
        if device is not None:
            self._driver(device)
        return await self.agent.coordinator.poll_now(None if device is None else {device})

    async def restart_driver(self, device: str) -> None:
        agent = self.agent
        old = self._driver(device)
        settings = agent.settings
        fresh = create_driver(next(d for d in settings.devices if d.id == device), clock=agent.clock)
        drivers = [fresh if d is old else d for d in agent.drivers]
        await agent.coordinator.reconfigure(
            _polled(drivers, settings),
            retire=[old],
        )
        agent.drivers = drivers

    async def write(self, device: str, target: str | RegisterSpec, value: float) -> str:
        driver = self._driver(device)
        writer = getattr(driver, "write", None)
        if writer is None:
            raise CommandRejected(f"device {device!r} ({driver.kind}) does not take writes")
        try:
            words = await writer(target, value)
        except DriverError as exc:
            raise CommandRejected(exc.reason) from None
        where = target if isinstance(target, str) else target.describe()
        return f"wrote {value:g} to {device} {where}: {' '.join(f'{w:04x}' for w in words)}"


def _polled(drivers: list[Driver], settings: Settings) -> list[PolledDevice]:
    """The coordinator's view of ``drivers`` (in the order of ``settings.devices``)."""
    pairs = zip(drivers, settings.devices, strict=True)
    return [PolledDevice(driver, settings.interval_of(device), device.report) for driver, device in pairs]
