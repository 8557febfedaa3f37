"""The exception tree of ``misto.cloud``. Every error carries its data and says whether
retrying can help (``retryable``): a retryable error keeps the message unacknowledged and is
tried again; a permanent one is reported (config) or dead-lettered (payload)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


class CloudError(Exception):
    """Base of every error raised by ``misto.cloud``."""

    retryable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class SettingError:
    """One invalid setting: ``path`` like ``embedded_broker.users[2].password``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(CloudError):
    """The configuration is invalid. ``errors`` lists every problem, each naming its key."""

    def __init__(self, errors: Sequence[SettingError], *, source: str | None = None) -> None:
        self.errors = tuple(errors)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {e}" for e in self.errors)
        super().__init__(f"{len(self.errors)} configuration error(s){where}:\n{lines}")


class StoreError(CloudError):
    """The store could not complete ``operation`` (disk full, locked, I/O): try again later."""

    retryable = True

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"store {operation} failed: {reason}")


class StoreSchemaError(StoreError):
    """The database was written by a newer misto-cloud, or its schema cannot be migrated."""

    retryable = False


class StoreClosedError(StoreError):
    """The store was used after :meth:`close`."""

    retryable = False

    def __init__(self, operation: str) -> None:
        super().__init__(operation, "the store is closed")


class BrokerStartError(CloudError):
    """The embedded MQTT broker could not start (port in use, bad user file)."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"embedded MQTT broker on {address} could not start: {reason}")


class ServiceStartError(CloudError):
    """A part of the service could not start, e.g. the API port is taken."""

    def __init__(self, part: str, reason: str) -> None:
        self.part = part
        self.reason = reason
        super().__init__(f"{part} could not start: {reason}")


class PublishError(CloudError):
    """A message for a gateway (config or command) could not be handed to the broker.

    ``reason`` says why; the subclass says whether trying again can help.
    """

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"publishing to {topic} failed: {reason}")


class BrokerUnavailableError(PublishError):
    """No broker link (not connected, connection lost, or no PUBACK in time): try again later.

    After a lost connection or a timeout the broker may still have taken the message.
    """

    retryable = True


class PublishRefusedError(PublishError):
    """The broker answered the PUBLISH with a failure reason code (e.g. not authorised by its ACL)."""


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One problem in a request: ``field`` is a path into the request body like ``config.broker``."""

    field: tuple[str | int, ...]
    message: str
    value: object = None


class ControlInputError(CloudError):
    """A remote configuration or command that cannot be sent; ``problems`` names each bad field."""

    def __init__(self, problems: Sequence[InputProblem]) -> None:
        self.problems = tuple(problems)
        text = "; ".join(f"{'.'.join(map(str, p.field))}: {p.message}" for p in self.problems)
        super().__init__(f"invalid request: {text}")


class VersionConflictError(CloudError):
    """A configuration version that is not newer than every version issued to the gateway."""

    def __init__(self, gateway: str, requested: int, latest: int) -> None:
        self.gateway = gateway
        self.requested = requested
        self.latest = latest
        super().__init__(
            f"version {requested} is not greater than version {latest}, the latest issued to {gateway!r}; "
            f"send a higher version or leave it out (the next is {latest + 1})"
        )
