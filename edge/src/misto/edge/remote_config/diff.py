"""What a new configuration changes, device by device, so only those devices restart."""

from __future__ import annotations

from dataclasses import dataclass

from misto.edge.settings import Settings


@dataclass(frozen=True, slots=True)
class DeviceChanges:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]  # same id, different settings: the driver restarts
    retimed: tuple[str, ...]  # same settings, another effective poll interval: rescheduled only
    unchanged: tuple[str, ...]

    @property
    def restarts(self) -> frozenset[str]:
        """Devices whose driver must be (re)created."""
        return frozenset(self.added) | frozenset(self.changed)

    def summary(self) -> str:
        parts = [f"{len(ids)} {name}" for name, ids in (
            ("added", self.added), ("removed", self.removed), ("changed", self.changed), ("retimed", self.retimed),
        ) if ids]  # fmt: skip
        return ", ".join(parts) or "no device changes"


def plan_changes(old: Settings, new: Settings) -> DeviceChanges:
    before = {d.id: d for d in old.devices}
    after = {d.id: d for d in new.devices}
    added = tuple(i for i in after if i not in before)
    removed = tuple(i for i in before if i not in after)
    changed, retimed, unchanged = [], [], []
    for device_id, device in after.items():
        previous = before.get(device_id)
        if previous is None:
            continue
        if previous != device:
            changed.append(device_id)
        elif old.interval_of(previous) != new.interval_of(device):
            retimed.append(device_id)
        else:
            unchanged.append(device_id)
    return DeviceChanges(added, removed, tuple(changed), tuple(retimed), tuple(unchanged))
