"""Remote configuration and commands: check, record, publish, record the outcome.

Order of work for each request:

1. check the input (:mod:`.checks`); nothing is recorded for a bad request;
2. refuse at once if there is no broker link (:class:`~misto.cloud.errors.BrokerUnavailableError`);
3. record the configuration version or the command (so an ack that arrives quickly finds it);
4. publish with QoS 1 (configuration retained, command with a message expiry) and wait for PUBACK;
5. record when the broker confirmed it, or why it did not.

Configuration versions of one gateway are published one at a time (a lock per gateway), so a
retained version is never replaced by an older one. A version whose publish failed is not reused:
the broker may still have delivered it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from misto.cloud.control.base import CommandRecord, ConfigRecord, ConfigStatus, ControlRepository
from misto.cloud.control.checks import MAX_VERSION, check_command, check_config, check_size
from misto.cloud.errors import BrokerUnavailableError, ControlInputError, InputProblem, PublishError
from misto.cloud.settings import ControlSettings
from misto.protocol import Channel, Command, ConfigUpdate, codec, topics

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """The broker link (:class:`misto.cloud.ingest.mqtt.MqttSubscriber`)."""

    @property
    def connected(self) -> bool: ...

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        message_expiry_s: int | None = None,
        timeout_s: float | None = None,
    ) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RemoteControl:
    """Sends configurations and commands to gateways. ``publisher`` None: this process has no broker
    link (API only), so reads work and sends answer :class:`BrokerUnavailableError`."""

    def __init__(
        self,
        repository: ControlRepository,
        publisher: Publisher | None,
        *,
        publish_timeout_s: float = 10.0,
        command_expiry_s: int = 600,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.repository = repository
        self._publisher = publisher
        self._timeout_s = publish_timeout_s
        self._expiry_s = command_expiry_s
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(
        cls, repository: ControlRepository, publisher: Publisher | None, settings: ControlSettings
    ) -> RemoteControl:
        return cls(
            repository,
            publisher,
            publish_timeout_s=settings.publish_timeout_s,
            command_expiry_s=settings.command_expiry_s,
        )

    # -- configuration -------------------------------------------------------------------------

    async def set_config(self, gateway: str, config: Mapping[str, Any], *, version: int | None = None) -> ConfigStatus:
        """Publish ``config`` as the gateway's new retained configuration; the status afterwards,
        with ``desired`` being the version this call issued (even if another call issued a newer one)."""
        topics.check_gateway_id(gateway)
        problems = check_config(config)
        if version is not None and not 1 <= version <= MAX_VERSION:
            problems.append(InputProblem(("version",), f"must be between 1 and {MAX_VERSION}", version))
        # Checked with the largest version: the real one can only make the message shorter.
        sample = ConfigUpdate(schema=1, gateway=gateway, version=MAX_VERSION, config=dict(config))
        problems += check_size(codec.encode(sample), ("config",))
        if problems:
            raise ControlInputError(problems)
        topic = topics.build(gateway, Channel.CONFIG)
        publisher = self._link(topic)
        # Shielded: a request cancelled mid-way still records what happened to the broker (and
        # keeps the gateway's lock until then).
        issued = await asyncio.shield(self._issue_config(publisher, topic, gateway, config, version))
        status = await self.repository.config_status(gateway)
        if status.desired is None or status.desired.version != issued.version:
            status = dataclasses.replace(status, desired=issued)
        return status

    async def _issue_config(
        self, publisher: Publisher, topic: str, gateway: str, config: Mapping[str, Any], version: int | None
    ) -> ConfigRecord:
        async with self._locks.setdefault(gateway, asyncio.Lock()):
            return await self._publish_config(publisher, topic, gateway, config, version)

    async def _publish_config(
        self, publisher: Publisher, topic: str, gateway: str, config: Mapping[str, Any], version: int | None
    ) -> ConfigRecord:
        record = await self.repository.add_config(gateway, config, version=version, issued_at=self._clock())
        message = ConfigUpdate(schema=1, gateway=gateway, version=record.version, config=dict(record.config))
        try:
            await publisher.publish(topic, codec.encode(message), qos=1, retain=True, timeout_s=self._timeout_s)
        except PublishError as exc:
            await self.repository.config_published(gateway, record.version, at=None, error=exc.reason)
            log.warning("configuration version %d for %s not confirmed by the broker: %s",
                        record.version, gateway, exc.reason)  # fmt: skip
            raise
        published_at = self._clock()
        await self.repository.config_published(gateway, record.version, at=published_at)
        log.info("configuration version %d published (retained) for %s", record.version, gateway)
        return dataclasses.replace(record, published_at=published_at)

    async def config_status(self, gateway: str) -> ConfigStatus:
        return await self.repository.config_status(gateway)

    # -- commands ------------------------------------------------------------------------------

    async def send_command(self, gateway: str, action: str, args: Mapping[str, Any]) -> CommandRecord:
        """Publish a command with a new id; the record afterwards (its state is pending until the Ack)."""
        topics.check_gateway_id(gateway)
        command_id = uuid.uuid4().hex
        message = Command(schema=1, id=command_id, action=action, args=dict(args))
        payload = codec.encode(message)
        problems = check_command(action, args) + check_size(payload, ("args",))
        if problems:
            raise ControlInputError(problems)
        topic = topics.build(gateway, Channel.CMD)
        publisher = self._link(topic)
        issued_at = self._clock()
        record = CommandRecord(
            id=command_id,
            gateway=gateway,
            action=action,
            args=dict(args),
            issued_at=issued_at,
            expires_at=issued_at + timedelta(seconds=self._expiry_s),
        )
        await asyncio.shield(self._issue_command(publisher, topic, record, payload))
        stored = await self.repository.command(gateway, command_id)
        assert stored is not None, f"command {command_id} vanished from the repository"
        return stored

    async def _issue_command(self, publisher: Publisher, topic: str, record: CommandRecord, payload: bytes) -> None:
        await self.repository.add_command(record)
        try:
            await publisher.publish(
                topic, payload, qos=1, retain=False, message_expiry_s=self._expiry_s, timeout_s=self._timeout_s
            )
        except PublishError as exc:
            await self.repository.command_published(record.gateway, record.id, at=None, error=exc.reason)
            log.warning("command %s (%s) for %s not confirmed by the broker: %s",
                        record.id, record.action, record.gateway, exc.reason)  # fmt: skip
            raise
        await self.repository.command_published(record.gateway, record.id, at=self._clock())
        log.info("command %s (%s) published for %s", record.id, record.action, record.gateway)

    async def commands(self, gateway: str, limit: int) -> list[CommandRecord]:
        return await self.repository.commands(gateway, limit)

    async def command(self, gateway: str, command_id: str) -> CommandRecord | None:
        return await self.repository.command(gateway, command_id)

    def now(self) -> datetime:
        return self._clock()

    # -- the broker link -----------------------------------------------------------------------

    def _link(self, topic: str) -> Publisher:
        if self._publisher is None:
            raise BrokerUnavailableError(topic, "this process serves the API only and has no broker link")
        if not self._publisher.connected:
            raise BrokerUnavailableError(topic, "not connected to the MQTT broker; try again when it is back")
        return self._publisher
