"""The control repository: what the cloud asked of each gateway (configuration versions, commands)
and what the gateway answered (acks). Kept apart from the reading :class:`~misto.cloud.storage.Store`
(time series, InfluxDB next): this is small, relational and transactional.

Records are frozen dataclasses with UTC datetimes; the API maps them to its own response models.
A record is written *before* its message is published, so an ack that overtakes the bookkeeping
of the publish still finds what it answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from misto.protocol import Ack, AckResult

CONFIG_REF_PREFIX = "config:"


def config_ref(version: int) -> str:
    """The ``ref`` of the Ack that answers configuration ``version``."""
    return f"{CONFIG_REF_PREFIX}{version}"


def parse_config_ref(ref: str) -> int | None:
    """The version named by a ``config:<version>`` ref, else None (then ``ref`` is a command id)."""
    if not ref.startswith(CONFIG_REF_PREFIX):
        return None
    digits = ref.removeprefix(CONFIG_REF_PREFIX)
    if not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


@dataclass(frozen=True, slots=True)
class AckRecord:
    """A gateway's answer: ``at`` is the gateway's clock, ``received_at`` the cloud's."""

    result: AckResult
    detail: str
    at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """One issued configuration version. ``published_at`` is None until the broker confirmed it
    (or the gateway acknowledged it); ``publish_error`` says why a publish was not confirmed."""

    gateway: str
    version: int
    config: Mapping[str, Any]
    issued_at: datetime
    published_at: datetime | None = None
    publish_error: str | None = None
    ack: AckRecord | None = None


@dataclass(frozen=True, slots=True)
class ConfigStatus:
    """A gateway's configuration as the cloud knows it.

    ``desired``: the newest version the broker confirmed (what the gateway is told to run);
    ``last_acked``: the newest version the gateway answered, whatever the answer;
    ``applied_version``: the newest version it answered ``ok``. A version that failed to publish is
    never reused, so ``next_version`` can exceed ``desired.version + 1``.
    """

    gateway: str
    desired: ConfigRecord | None
    last_acked: ConfigRecord | None
    applied_version: int | None
    next_version: int


class CommandState(StrEnum):
    UNSENT = "unsent"  # the broker never confirmed the publish (see publish_error)
    PENDING = "pending"  # the broker has it; no answer from the gateway yet
    EXPIRED = "expired"  # no answer before expires_at: the broker drops it (MQTT 5), the gateway never ran it
    OK = "ok"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: str
    gateway: str
    action: str
    args: Mapping[str, Any]
    issued_at: datetime
    expires_at: datetime
    published_at: datetime | None = None
    publish_error: str | None = None
    ack: AckRecord | None = None

    def state(self, now: datetime) -> CommandState:
        if self.ack is not None:
            return CommandState.OK if self.ack.result is AckResult.OK else CommandState.ERROR
        if self.published_at is None:
            return CommandState.UNSENT if self.publish_error is not None else CommandState.PENDING
        return CommandState.EXPIRED if now >= self.expires_at else CommandState.PENDING


class AckSink(Protocol):
    """Where the ingester puts each decoded :class:`~misto.protocol.Ack`."""

    async def record_ack(self, gateway: str, ack: Ack, *, received_at: datetime) -> bool:
        """Attach ``ack`` to the command or configuration version it answers (a later ack of the
        same ref replaces an earlier one). False, storing nothing, if ``gateway`` was never sent
        what ``ack.ref`` names."""
        ...


@runtime_checkable
class ControlRepository(AckSink, Protocol):
    """Issued configuration versions, issued commands and their acks. All methods are coroutines
    that never block the event loop; errors are :class:`misto.cloud.errors.StoreError`."""

    async def add_config(
        self, gateway: str, config: Mapping[str, Any], *, version: int | None, issued_at: datetime
    ) -> ConfigRecord:
        """Record a new version: ``version`` if given, else one more than the newest issued.

        Raises :class:`~misto.cloud.errors.VersionConflictError` if ``version`` is not greater
        than every version issued to ``gateway`` (including ones whose publish failed).
        """
        ...

    async def config_published(
        self, gateway: str, version: int, *, at: datetime | None, error: str | None = None
    ) -> None:
        """The outcome of publishing a version: confirmed ``at``, or not confirmed because of ``error``."""
        ...

    async def config_status(self, gateway: str) -> ConfigStatus: ...

    async def add_command(self, command: CommandRecord) -> None: ...

    async def command_published(
        self, gateway: str, command_id: str, *, at: datetime | None, error: str | None = None
    ) -> None: ...

    async def commands(self, gateway: str, limit: int) -> list[CommandRecord]:
        """Newest first."""
        ...

    async def command(self, gateway: str, command_id: str) -> CommandRecord | None: ...

    async def close(self) -> None: ...
