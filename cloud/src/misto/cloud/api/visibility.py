"""Which devices' telemetry a caller may see on the public read endpoints (``/api/v1/devices``,
``/api/v1/readings/latest``, ``/api/v1/series``): staff (admin, operator, technician) see every
device; everyone else sees what ``api.public_devices`` allows:

* ``not_private`` (default): every device except those the registry marks ``private``, so a
  device reporting before it is registered shows on the public map;
* ``registered_public``: only devices registered and marked ``public`` (the strict choice for a
  city that registers every device before it goes live).

The registry's answer is kept a few seconds (:mod:`.visibility_cache`), so a public page does not
query the registry on every request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from misto.cloud.api.access import STAFF, Caller
from misto.cloud.api.deps import StateDep
from misto.cloud.settings import PublicDevices


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """``shows(device)``: whether this caller may see ``device``'s telemetry."""

    everything: bool = True
    hidden: frozenset[str] = frozenset()  # not_private: the registered-private devices
    only: frozenset[str] | None = None  # registered_public: the registered-public devices

    def shows(self, device: str) -> bool:
        if self.everything:
            return True
        if self.only is not None:
            return device in self.only
        return device not in self.hidden


async def device_filter(state: StateDep, caller: Caller) -> DeviceFilter:
    if caller is not None and caller.role in STAFF:
        return DeviceFilter()
    registry = state.registry
    mode = state.settings.api.public_devices
    if registry is None:  # no registry open: nothing is known to be public
        return DeviceFilter(everything=False, only=frozenset() if mode == PublicDevices.REGISTERED_PUBLIC else None)
    await state.visibility.refresh(registry)
    if mode == PublicDevices.REGISTERED_PUBLIC:
        return DeviceFilter(everything=False, only=state.visibility.public)
    return DeviceFilter(everything=False, hidden=state.visibility.private)


DeviceFilterDep = Annotated[DeviceFilter, Depends(device_filter)]
