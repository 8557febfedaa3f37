"""Which gateway a device belongs to, so that a gateway cannot publish readings for another's
devices. Until the device registry exists (issue 5), a device belongs to the first gateway heard
publishing it: :class:`FirstGatewayOwnership`, loaded from the store at start. The registry will
implement the same small :class:`DeviceOwnership` interface."""

from __future__ import annotations

from typing import Protocol

from misto.cloud.storage.base import Store


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
