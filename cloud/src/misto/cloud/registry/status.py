"""Each registered device's and gateway's status, derived from telemetry (pure: the caller reads
the registry and the store once and passes the clock's ``now``).

A device is ``online`` if its newest reading is at most ``online_within`` old, ``stale`` up to
``stale_within``, then ``offline``; ``never_seen`` without any reading. Its battery
(``batteryLevel``, 0..1) and signal (``rssi``, dBm) are the latest values it reported, if any, and
``polling`` is what its gateway's newest health message says of it (``available``,
``unavailable``, ``starting``; None if not reported). A gateway is judged the same way from the
last time the cloud heard from it (status, health or telemetry), except that a gateway whose last
status message says ``offline`` (its will, sent by the broker when it drops) is ``offline``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from misto.cloud.registry.models import DeviceRecord, GatewayRecord, Visibility
from misto.cloud.storage.base import DeviceInfo, GatewayStatus
from misto.protocol import GatewayState

BATTERY_METRIC = "batteryLevel"
SIGNAL_METRIC = "rssi"


class Liveness(StrEnum):
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    NEVER_SEEN = "never_seen"


@dataclass(frozen=True, slots=True)
class Thresholds:
    online_within: timedelta
    stale_within: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.online_within <= self.stale_within:
            raise ValueError("thresholds: need 0 < online_within <= stale_within")


def liveness(last_seen: datetime | None, now: datetime, thresholds: Thresholds) -> Liveness:
    """A reading from the (near) future counts as just seen."""
    if last_seen is None:
        return Liveness.NEVER_SEEN
    age = now - last_seen
    if age <= thresholds.online_within:
        return Liveness.ONLINE
    if age <= thresholds.stale_within:
        return Liveness.STALE
    return Liveness.OFFLINE


@dataclass(frozen=True, slots=True)
class Measured:
    value: float
    at: datetime


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    device: str
    gateway_id: str
    district: str | None
    visibility: Visibility
    state: Liveness
    last_seen: datetime | None
    battery: Measured | None  # batteryLevel, 0..1
    signal: Measured | None  # rssi, dBm
    polling: str | None  # the gateway's view: available, unavailable, starting


@dataclass(frozen=True, slots=True)
class GatewayLiveness:
    gateway: str
    district: str | None
    visibility: Visibility
    state: Liveness
    last_seen: datetime | None
    reported: GatewayState | None  # its last status message (None: none yet)
    agent_version: str | None


def device_statuses(
    devices: Iterable[DeviceRecord],
    telemetry: Iterable[DeviceInfo],
    gateways: Iterable[GatewayStatus],
    *,
    now: datetime,
    thresholds: Thresholds,
) -> list[DeviceStatus]:
    """The status of each registered device, in the order given. Telemetry of devices the
    registry does not know is ignored here (the ingester's device checks deal with them)."""
    seen = {info.device: info for info in telemetry}
    polling = _polling(gateways)
    out = []
    for device in devices:
        info = seen.get(device.id)
        latest = {reading.metric: reading for reading in info.readings} if info else {}
        battery, signal = latest.get(BATTERY_METRIC), latest.get(SIGNAL_METRIC)
        last_seen = info.last_seen if info else None
        out.append(
            DeviceStatus(
                device=device.id,
                gateway_id=device.gateway_id,
                district=device.district,
                visibility=device.visibility,
                state=liveness(last_seen, now, thresholds),
                last_seen=last_seen,
                battery=Measured(battery.value, battery.ts) if battery else None,
                signal=Measured(signal.value, signal.ts) if signal else None,
                polling=polling.get((device.gateway_id, device.id)),
            )
        )
    return out


def _polling(gateways: Iterable[GatewayStatus]) -> Mapping[tuple[str, str], str]:
    states: dict[tuple[str, str], str] = {}
    for status in gateways:
        if status.health is not None:
            for device in status.health.health.devices:
                states[status.gateway, device.device] = device.state.value
    return states


def gateway_statuses(
    gateways: Iterable[GatewayRecord],
    telemetry: Iterable[GatewayStatus],
    *,
    now: datetime,
    thresholds: Thresholds,
) -> list[GatewayLiveness]:
    heard = {status.gateway: status for status in telemetry}
    out = []
    for gateway in gateways:
        status = heard.get(gateway.id)
        last_seen = status.last_seen if status else None
        state = liveness(last_seen, now, thresholds)
        if status is not None and status.state is GatewayState.OFFLINE:
            state = Liveness.OFFLINE
        out.append(
            GatewayLiveness(
                gateway=gateway.id,
                district=gateway.district,
                visibility=gateway.visibility,
                state=state,
                last_seen=last_seen,
                reported=status.state if status else None,
                agent_version=status.agent_version if status else None,
            )
        )
    return out


def public_state(state: Liveness) -> Literal["online", "offline"]:
    """What the public map shows: ``online`` only when fresh, else ``offline``."""
    return "online" if state is Liveness.ONLINE else "offline"
