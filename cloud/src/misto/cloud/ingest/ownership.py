"""Which gateway a device belongs to, so that a gateway cannot publish readings for another's
devices. Two implementations of the small :class:`DeviceOwnership` interface:

* :class:`FirstGatewayOwnership` (``device_ownership: first_gateway``): a device belongs to the
  first gateway heard publishing it, loaded from the store at start;
* :class:`RegistryOwnership` (``device_ownership: registry``): a device belongs to its gateway in
  the registry, held in memory and re-read every ``registry_refresh_s`` and soon after an unknown
  device is seen (never a database call per message). A device the registry does not list is
  kept to the first gateway heard (``unregistered_devices: first_gateway``) or refused
  (``refuse``) until it is registered. See docs/provisioning.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from misto.cloud.registry import RegistryError, RegistryRepository
from misto.cloud.registry.repository import MAX_LIMIT
from misto.cloud.settings import UnregisteredDevices
from misto.cloud.storage.base import Store

log = logging.getLogger(__name__)

#: What :meth:`DeviceOwnership.claim` answers for a device refused because it is not registered
#: (no gateway id is empty).
UNREGISTERED = ""
MIN_REFRESH_GAP_S = 1.0  # unknown devices trigger at most one registry read per second


class DeviceOwnership(Protocol):
    """Answers, for each reading, whether its gateway may publish for its device."""

    def claim(self, device: str, gateway: str) -> str | None:
        """None if ``gateway`` may publish for ``device`` (recording it as the owner if the device
        is new); otherwise the gateway the device belongs to."""
        ...


class FirstGatewayOwnership:
    """A device belongs to the first gateway that published it. Kept in memory (one entry per
    device), seeded from the devices already stored, so it holds across restarts. Several
    ingesters sharing the load each keep their own map: a device claimed by two gateways at the
    same time in two ingesters is only caught after a restart (the registry closes that gap)."""

    def __init__(self, owners: dict[str, str] | None = None) -> None:
        self._owners: dict[str, str] = dict(owners or {})

    @classmethod
    async def load(cls, store: Store) -> FirstGatewayOwnership:
        """Seeded from ``store.devices()``: each stored device's gateway is its owner."""
        return cls({device.device: device.gateway for device in await store.devices()})

    def __len__(self) -> int:
        return len(self._owners)

    def owner(self, device: str) -> str | None:
        return self._owners.get(device)

    def claim(self, device: str, gateway: str) -> str | None:
        owner = self._owners.setdefault(device, gateway)
        return None if owner == gateway else owner


def refusal(device: str, gateway: str, owner: str) -> str:
    """The dead letter's reason for a reading ``claim`` refused (``owner`` as it answered)."""
    if owner == UNREGISTERED:
        return (
            f"device {device!r} is not in the registry (ingest.validation.unregistered_devices: refuse): "
            f"register it to gateway {gateway!r} to accept its readings"
        )
    return f"device {device!r} belongs to gateway {owner!r}, not {gateway!r}"


OwnersSource = Callable[[], Awaitable[dict[str, str]]]


async def registry_owners(registry: RegistryRepository) -> dict[str, str]:
    """Every registered device's gateway, read page by page."""
    owners: dict[str, str] = {}
    after: str | None = None
    while True:
        page = await registry.list_devices(after=after, limit=MAX_LIMIT)
        owners.update((device.id, device.gateway_id) for device in page.items)
        if page.next_after is None:
            return owners
        after = page.next_after


class RegistryOwnership:
    """Device owners from the registry, in memory. :meth:`claim` never waits: an unknown device is
    judged by ``unregistered`` at once and a refresh is asked for (at most one a second), so a
    device registered a moment ago is recognised within about a second; :meth:`run` also
    refreshes every ``refresh_s``. A registry that cannot be read keeps the last owners known
    (logged once, counted in ``failures``)."""

    def __init__(
        self,
        source: OwnersSource,
        *,
        unregistered: UnregisteredDevices = UnregisteredDevices.FIRST_GATEWAY,
        refresh_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self.unregistered = unregistered
        self.refresh_s = refresh_s
        self._monotonic = monotonic
        self._owners: dict[str, str] = {}
        self._first: dict[str, str] = {}  # unregistered devices, kept to their first gateway
        self._wanted = asyncio.Event()
        self._last_refresh = float("-inf")
        self.refreshes = 0
        self.failures = 0
        self._failing = False

    @classmethod
    async def load(
        cls,
        registry: RegistryRepository,
        *,
        unregistered: UnregisteredDevices = UnregisteredDevices.FIRST_GATEWAY,
        refresh_s: float = 30.0,
    ) -> RegistryOwnership:
        """Loaded from the registry now (a failure to read it raises: the service does not start)."""
        ownership = cls(lambda: registry_owners(registry), unregistered=unregistered, refresh_s=refresh_s)
        ownership.replace(await registry_owners(registry))
        return ownership

    def __len__(self) -> int:
        return len(self._owners)

    def owner(self, device: str) -> str | None:
        return self._owners.get(device)

    def replace(self, owners: dict[str, str]) -> None:
        """Take a fresh read of the registry: registered devices leave the first-gateway map."""
        self._owners = dict(owners)
        for device in [d for d in self._first if d in self._owners]:
            del self._first[device]
        self._last_refresh = self._monotonic()
        self.refreshes += 1

    def claim(self, device: str, gateway: str) -> str | None:
        owner = self._owners.get(device)
        if owner is not None:
            return None if owner == gateway else owner
        self._wanted.set()  # perhaps registered since the last read
        if self.unregistered is UnregisteredDevices.REFUSE:
            return UNREGISTERED
        owner = self._first.setdefault(device, gateway)
        return None if owner == gateway else owner

    async def refresh(self) -> bool:
        """Re-read the registry; False (and the old owners kept) if it could not be read."""
        try:
            owners = await self._source()
        except RegistryError as error:
            self.failures += 1
            if not self._failing:
                log.error("device owners not refreshed from the registry (keeping the last known): %s", error)
            self._failing = True
            return False
        if self._failing:
            log.info("device owners refreshed from the registry again")
        self._failing = False
        self.replace(owners)
        return True

    async def run(self) -> None:
        """Until cancelled: refresh every ``refresh_s``, and soon after an unknown device is seen."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), timeout=self.refresh_s)
            gap = MIN_REFRESH_GAP_S - (self._monotonic() - self._last_refresh)
            if gap > 0:
                await asyncio.sleep(gap)
            self._wanted.clear()
            await self.refresh()
