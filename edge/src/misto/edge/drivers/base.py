"""The driver interface: one small class per device protocol, registered by name.

Lifecycle: the constructor checks the device's configuration without any I/O; :meth:`Driver.start`
opens the connection; :meth:`Driver.read` returns the device's current readings, each stamped with
the UTC time it was read; :meth:`Driver.close` releases everything. A failed read raises a
:class:`~misto.edge.errors.DriverError` saying whether the next attempt may succeed; the poll
coordinator counts it, marks the device unavailable and backs off. ``read`` reconnects by itself
when the connection was lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from misto.edge.clock import Clock
from misto.edge.device_config import DeviceSettings
from misto.protocol import Reading


class Driver(ABC):
    """Reads one device."""

    kind: ClassVar[str]
    """The ``driver:`` name this class is registered under."""

    def __init__(self, device: DeviceSettings, *, clock: Clock) -> None:
        self.device = device
        self.clock = clock

    @property
    def device_id(self) -> str:
        return self.device.id

    @property
    def read_deadline(self) -> float:
        """Seconds after which a :meth:`read` that has not returned counts as failed (a safety net;
        drivers time out their own requests well before this)."""
        return 30.0

    @abstractmethod
    async def start(self) -> None:
        """Connect. Raises :class:`~misto.edge.errors.DriverError`; ``read`` retries the connection later."""

    @abstractmethod
    async def read(self) -> list[Reading]:
        """Every reading the device has now. Raises :class:`~misto.edge.errors.DriverError`."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection. Safe to call more than once, and after a failed ``start``."""
