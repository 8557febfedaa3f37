"""The exception tree of ``misto.edge``. Every error carries the data needed to log, count or
dead-letter it, and says whether trying again later can help (``retryable``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from misto.edge.config_errors import ConfigIssue


class EdgeError(Exception):
    """Base of every error raised by ``misto.edge``."""

    retryable: bool = False


class ConfigError(EdgeError):
    """The configuration is invalid. ``issues`` lists every problem found, each naming its path."""

    def __init__(self, issues: Sequence[ConfigIssue], *, source: str | None = None) -> None:
        self.issues = tuple(issues)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  {issue.render(source)}" for issue in self.issues)
        super().__init__(f"{len(self.issues)} configuration error(s){where}:\n{lines}")


class RegisterError(EdgeError, ValueError):
    """Registers cannot be decoded into, or a value cannot be encoded for, a register spec."""

    def __init__(self, metric: str, reason: str) -> None:
        self.metric = metric
        self.reason = reason
        super().__init__(f"{metric}: {reason}")


class DriverError(EdgeError):
    """A device could not be read (or written). ``retryable`` says whether the next poll may succeed."""

    def __init__(self, device_id: str, reason: str, *, retryable: bool) -> None:
        self.device_id = device_id
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"device {device_id!r}: {reason}")


class DeviceConnectionError(DriverError):
    """The device (or the gateway in front of it) cannot be reached."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(device_id, reason, retryable=True)


class DeviceTimeout(DriverError):
    """The device did not answer in time, after every retry."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(device_id, reason, retryable=True)


class DeviceRejected(DriverError):
    """The device answered with an error (e.g. a Modbus exception response).

    ``code`` is the protocol's error code (the Modbus exception code).
    """

    def __init__(self, device_id: str, reason: str, *, code: int, retryable: bool) -> None:
        self.code = code
        super().__init__(device_id, reason, retryable=retryable)


class UplinkError(EdgeError):
    """The uplink cannot be set up (bad broker settings, TLS files); connection losses are not errors."""


class BufferStorageError(EdgeError):
    """The store-and-forward buffer's storage cannot be used (cannot be created, locked by another agent,
    unreadable). Raised when the buffer opens; failures of single writes are counted as drops instead."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"buffer {path}: {reason}")
