"""Device and gateway status from telemetry: the thresholds with a driven clock, and the API over a
real SQLite store and registry (staff see everything, the public map sees public devices online or
offline only), reading the store once per request, not once per device."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.tests.support import T0, health
from cloud.tests.test_api import AUTH, TOKEN, client_for
from misto.cloud.api import create_app
from misto.cloud.api.routes.registry_status import status_clock
from misto.cloud.errors import ConfigError
from misto.cloud.registry.models import DeviceCreate, DeviceModelCreate, GatewayCreate, Visibility
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.status import Liveness, Thresholds, liveness
from misto.cloud.settings import load_settings
from misto.cloud.storage.base import DeviceInfo, GatewayStatus
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol import DeviceState, GatewayState, Reading
from misto.protocol.vocabulary import SensorKind

MINUTE = timedelta(minutes=1)
THRESHOLDS = Thresholds(online_within=5 * MINUTE, stale_within=60 * MINUTE)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (-MINUTE, Liveness.ONLINE),  # a reading stamped slightly ahead of the cloud's clock
        (timedelta(0), Liveness.ONLINE),
        (5 * MINUTE, Liveness.ONLINE),
        (5 * MINUTE + timedelta(milliseconds=1), Liveness.STALE),
        (60 * MINUTE, Liveness.STALE),
        (60 * MINUTE + timedelta(milliseconds=1), Liveness.OFFLINE),
        (timedelta(days=30), Liveness.OFFLINE),
    ],
)
def test_thresholds(age: timedelta, expected: Liveness) -> None:
    assert liveness(T0, T0 + age, THRESHOLDS) is expected


def test_never_seen_and_bad_thresholds() -> None:
    assert liveness(None, T0, THRESHOLDS) is Liveness.NEVER_SEEN
    with pytest.raises(ValueError, match="online_within <= stale_within"):
        Thresholds(online_within=2 * MINUTE, stale_within=MINUTE)


def test_settings_refuse_stale_before_online() -> None:
    with pytest.raises(ConfigError, match="stale_within_s must be at least online_within_s"):
        load_settings(overrides={"registry": {"status": {"online_within_s": 600, "stale_within_s": 60}}})
    config = load_settings().registry.status
    assert (config.online_within_s, config.stale_within_s) == (300, 3600)


class CountingStore:
    """A real store that counts the calls the status endpoints make."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def devices(self) -> list[DeviceInfo]:
        self.calls.append("devices")
        return await self._inner.devices()

    async def gateways(self) -> list[GatewayStatus]:
        self.calls.append("gateways")
        return await self._inner.gateways()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(tmp_path: Path, store: SqliteStore) -> AsyncIterator[tuple[httpx.AsyncClient, Clock, CountingStore]]:
    registry = await SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    await registry.create_model(
        DeviceModelCreate(id="aq1", kind=SensorKind.AIR, manufacturer="Acme", name="AQ-1", metrics=("pm25",)), actor="t"
    )
    for gateway, visibility in (("gw-1", Visibility.PUBLIC), ("gw-2", Visibility.PRIVATE)):
        await registry.create_gateway(
            GatewayCreate(id=gateway, name=gateway, organisation="City", district="Centre", visibility=visibility),
            actor="t",
        )
    for device, gateway, district, visibility in (
        ("dev-0", "gw-1", "Centre", Visibility.PUBLIC),  # fresh reading, battery and signal
        ("dev-1", "gw-1", "Centre", Visibility.PRIVATE),  # 20 minutes old
        ("dev-2", "gw-1", "Port", Visibility.PUBLIC),  # 2 hours old
        ("dev-3", "gw-2", "Port", Visibility.PUBLIC),  # never heard
    ):
        data = DeviceCreate(
            id=device, gateway_id=gateway, model_id="aq1", organisation="City", district=district, visibility=visibility
        )
        await registry.create_device(data, actor="t")
    now = T0 + timedelta(hours=3)
    await store.write_batch(
        "gw-1:b:1",
        "gw-1",
        [
            Reading("dev-0", "pm25", 10.0, "ug/m3", now - MINUTE),
            Reading("dev-0", "batteryLevel", 0.8, "1", now - 2 * MINUTE),
            Reading("dev-0", "rssi", -71.0, "dBm", now - MINUTE),
            Reading("dev-1", "pm25", 12.0, "ug/m3", now - 20 * MINUTE),
            Reading("dev-2", "pm25", 14.0, "ug/m3", now - 120 * MINUTE),
            Reading("stranger", "pm25", 1.0, "ug/m3", now),  # not registered: ignored
        ],
    )
    await store.set_gateway_status(
        "gw-1", GatewayState.ONLINE, boot="b", at=now - 3 * MINUTE, agent_version="0.1.0", received_at=now - 3 * MINUTE
    )
    states = (DeviceState.AVAILABLE, DeviceState.AVAILABLE, DeviceState.UNAVAILABLE)
    await store.set_gateway_health(health("gw-1", at=now - 2 * MINUTE, states=states), received_at=now - 2 * MINUTE)
    settings = load_settings(overrides={"api": {"operator_token": TOKEN}, "store": {"path": str(tmp_path / "x.db")}})
    counting = CountingStore(store)
    app = create_app(settings, store=counting, registry=registry)
    clock = Clock(now)
    app.dependency_overrides[status_clock] = clock
    try:
        async with app.router.lifespan_context(app), client_for(app) as client:
            yield client, clock, counting
    finally:
        await registry.close()


async def test_staff_overview(world: tuple[httpx.AsyncClient, Clock, CountingStore]) -> None:
    api, clock, store = world
    response = await api.get("/api/v1/registry/status", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert store.calls == ["devices", "gateways"]  # one read of each, however many devices
    states = {d["device"]: d["state"] for d in body["devices"]}
    assert states == {"dev-0": "online", "dev-1": "stale", "dev-2": "offline", "dev-3": "never_seen"}
    assert body["counts"] == {"online": 1, "stale": 1, "offline": 1, "never_seen": 1}
    dev0 = body["devices"][0]
    assert dev0["battery"]["value"] == 0.8
    assert dev0["signal"]["value"] == -71.0
    assert dev0["polling"] == "available"
    assert body["devices"][2]["polling"] == "unavailable"
    assert body["devices"][3]["polling"] is None
    assert {g["gateway"]: g["state"] for g in body["gateways"]} == {"gw-1": "online", "gw-2": "never_seen"}
    # the clock moves on: everything goes stale, then offline
    clock.now += 10 * MINUTE
    body = (await api.get("/api/v1/registry/status", headers=AUTH)).json()
    assert [d["state"] for d in body["devices"]] == ["stale", "stale", "offline", "never_seen"]
    clock.now += 2 * timedelta(hours=1)
    filtered = await api.get("/api/v1/registry/status", params={"district": "Centre", "state": "offline"}, headers=AUTH)
    assert [d["device"] for d in filtered.json()["devices"]] == ["dev-0", "dev-1"]
    only_gw2 = (await api.get("/api/v1/registry/status", params={"gateway": "gw-2"}, headers=AUTH)).json()
    assert [d["device"] for d in only_gw2["devices"]] == ["dev-3"]
    assert [g["gateway"] for g in only_gw2["gateways"]] == ["gw-2"]


async def test_one_device_and_gateway(world: tuple[httpx.AsyncClient, Clock, CountingStore]) -> None:
    api, _, _ = world
    device = await api.get("/api/v1/registry/devices/dev-1/status", headers=AUTH)
    assert device.status_code == 200
    assert device.json()["state"] == "stale"
    gateway = await api.get("/api/v1/registry/gateways/gw-1/status", headers=AUTH)
    assert gateway.json()["reported"] == "online"
    assert gateway.json()["agent_version"] == "0.1.0"
    assert (await api.get("/api/v1/registry/devices/nope/status", headers=AUTH)).status_code == 404
    assert (await api.get("/api/v1/registry/devices/dev-1/status")).status_code == 401
    assert (await api.get("/api/v1/registry/status")).status_code == 401
    bad = await api.get("/api/v1/registry/status", params={"state": "sleepy"}, headers=AUTH)
    assert bad.status_code == 422


async def test_a_gateway_whose_will_says_offline_is_offline(
    world: tuple[httpx.AsyncClient, Clock, CountingStore],
) -> None:
    api, clock, store = world
    await store.set_gateway_status(
        "gw-1", GatewayState.OFFLINE, boot="b", at=clock.now, agent_version="0.1.0", received_at=clock.now
    )
    gateway = (await api.get("/api/v1/registry/gateways/gw-1/status", headers=AUTH)).json()
    assert (gateway["state"], gateway["reported"]) == ("offline", "offline")


async def test_public_map_sees_public_devices_online_or_offline(
    world: tuple[httpx.AsyncClient, Clock, CountingStore],
) -> None:
    api, _, _ = world
    response = await api.get("/api/v1/open-data/device-status")
    assert response.status_code == 200
    assert [(d["device"], d["state"]) for d in response.json()] == [
        ("dev-0", "online"),
        ("dev-2", "offline"),
        ("dev-3", "offline"),
    ]
    assert all(set(d) == {"device", "state", "last_seen"} for d in response.json())
