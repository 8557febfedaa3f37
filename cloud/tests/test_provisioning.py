"""Provisioning tokens in the registry on SQLite and PostGIS (create, exchange, expiry with a driven
clock, single use under concurrency, revocation, audit), the HTTP API (roles, refusals, failure
limit), the broker-files keeper and device ownership from the registry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cloud.tests.test_api import AUTH, TOKEN, client_for
from misto.cloud.api import create_app
from misto.cloud.api.routes.provisioning import FailureGuard, guard_counts
from misto.cloud.ingest.ownership import UNREGISTERED, RegistryOwnership, refusal
from misto.cloud.registry.credentials import AccountRole, BrokerCredentials, verify_secret
from misto.cloud.registry.errors import InvalidFieldError, NotFoundError
from misto.cloud.registry.models import (
    DeviceCreate,
    DeviceModelCreate,
    Entity,
    GatewayCreate,
    GatewayUpdate,
    Lifecycle,
)
from misto.cloud.registry.mosquitto_files import BrokerFilesError, BrokerFilesKeeper
from misto.cloud.registry.provisioning import Provisioning, ProvisioningError, Refusal, TokenState, token_digest
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.tables import provisioning_tokens
from misto.cloud.settings import UnregisteredDevices, load_settings
from misto.protocol.vocabulary import SensorKind

OPERATOR = "operator:test"
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    found: str = request.getfixturevalue("postgis").url
    return found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def registry(url: str, clock: Clock) -> AsyncIterator[SqlRegistry]:
    async with await SqlRegistry.open(url, clock=clock) as opened:
        await seed(opened)
        yield opened


async def seed(registry: SqlRegistry) -> None:
    await registry.create_model(
        DeviceModelCreate(id="aq1", kind=SensorKind.AIR, manufacturer="Acme", name="AQ-1", metrics=("pm25",)),
        actor=OPERATOR,
    )
    for gw in ("gw-a", "gw-b"):
        await registry.create_gateway(GatewayCreate(id=gw, name=gw, organisation="City"), actor=OPERATOR)
    for device, gw in (("aq-a1", "gw-a"), ("aq-a2", "gw-a"), ("aq-b1", "gw-b")):
        await registry.create_device(
            DeviceCreate(id=device, gateway_id=gw, model_id="aq1", organisation="City"), actor=OPERATOR
        )


# --- tokens in the registry ---------------------------------------------------------------------


async def test_token_lifecycle(registry: SqlRegistry, clock: Clock) -> None:
    provisioning = Provisioning(registry)
    with pytest.raises(NotFoundError, match="gateway 'gw-x' not found"):
        await provisioning.create("gw-x", actor=OPERATOR)
    issued = await provisioning.create("gw-a", actor=OPERATOR)
    assert issued.token not in repr(issued)
    assert issued.record.expires_at == START + timedelta(hours=24)
    assert issued.record.state(clock.now) is TokenState.PENDING
    assert issued.revoked == ()

    # only the hash is stored
    def stored(conn: object) -> list[str]:
        import sqlalchemy as sa

        assert isinstance(conn, sa.Connection)
        return [r.token_hash for r in conn.execute(sa.select(provisioning_tokens))]

    assert await registry.transaction("t", stored) == [token_digest(issued.token)]

    clock.now += timedelta(hours=1)
    done = await provisioning.exchange(issued.token)
    assert done.gateway.id == "gw-a"
    assert [d.id for d in done.devices] == ["aq-a1", "aq-a2"]
    assert done.secret not in repr(done)
    assert done.token.used_at == clock.now
    entries = {e.username: e for e in await BrokerCredentials(registry).password_entries()}
    assert entries["gw-a"].role is AccountRole.GATEWAY
    assert verify_secret(done.secret, entries["gw-a"].password_hash)

    with pytest.raises(ProvisioningError, match="already used") as used:
        await provisioning.exchange(issued.token)
    assert used.value.refusal is Refusal.USED
    with pytest.raises(ProvisioningError, match="unknown token") as unknown:
        await provisioning.exchange("not-a-token")
    assert unknown.value.refusal is Refusal.UNKNOWN
    with pytest.raises(ProvisioningError) as used_revoke:
        await provisioning.revoke(issued.record.id, actor=OPERATOR)
    assert used_revoke.value.refusal is Refusal.USED

    history = await registry.audit(Entity.PROVISIONING_TOKEN, issued.record.id)
    assert [(e.actor, e.after["used_at"] is not None if e.after else None) for e in history] == [
        (f"provisioning:{issued.record.id}", True),
        (OPERATOR, False),
    ]
    assert all(issued.token not in str(e) and token_digest(issued.token) not in str(e) for e in history)


async def test_expiry_follows_the_clock(registry: SqlRegistry, clock: Clock) -> None:
    provisioning = Provisioning(registry)
    issued = await provisioning.create("gw-a", actor=OPERATOR, ttl=timedelta(minutes=10))
    clock.now += timedelta(minutes=10)
    with pytest.raises(ProvisioningError, match="expired at 2026-11-27T12:10:00") as expired:
        await provisioning.exchange(issued.token)
    assert expired.value.refusal is Refusal.EXPIRED
    assert (await provisioning.get(issued.record.id)).state(clock.now) is TokenState.EXPIRED
    with pytest.raises(InvalidFieldError, match="ttl_s"):
        await provisioning.create("gw-a", actor=OPERATOR, ttl=timedelta(seconds=5))


async def test_a_new_token_revokes_older_unused_ones(registry: SqlRegistry, clock: Clock) -> None:
    provisioning = Provisioning(registry)
    first = await provisioning.create("gw-a", actor=OPERATOR)
    clock.now += timedelta(seconds=1)
    other = await provisioning.create("gw-b", actor=OPERATOR)
    second = await provisioning.create("gw-a", actor=OPERATOR)
    assert second.revoked == (first.record.id,)
    with pytest.raises(ProvisioningError, match="revoked") as revoked:
        await provisioning.exchange(first.token)
    assert revoked.value.refusal is Refusal.REVOKED
    states = [(t.id, t.state(clock.now)) for t in await provisioning.tokens("gw-a")]
    assert states == [(second.record.id, TokenState.PENDING), (first.record.id, TokenState.REVOKED)]
    assert (await provisioning.exchange(other.token)).gateway.id == "gw-b"  # another gateway's stays live
    await provisioning.revoke(second.record.id, actor=OPERATOR)
    with pytest.raises(ProvisioningError) as refused:
        await provisioning.exchange(second.token)
    assert refused.value.refusal is Refusal.REVOKED


async def test_inactive_gateway_is_refused_and_the_token_kept(registry: SqlRegistry) -> None:
    provisioning = Provisioning(registry)
    issued = await provisioning.create("gw-a", actor=OPERATOR)
    gateway = await registry.get_gateway("gw-a")
    await registry.update_gateway(
        "gw-a", GatewayUpdate(status=Lifecycle.MAINTENANCE), version=gateway.version, actor=OPERATOR
    )
    with pytest.raises(ProvisioningError, match="'gw-a' is maintenance, not active") as refused:
        await provisioning.exchange(issued.token)
    assert refused.value.refusal is Refusal.GATEWAY_INACTIVE
    gateway = await registry.get_gateway("gw-a")
    await registry.update_gateway(
        "gw-a", GatewayUpdate(status=Lifecycle.ACTIVE), version=gateway.version, actor=OPERATOR
    )
    assert (await provisioning.exchange(issued.token)).gateway.id == "gw-a"


async def test_reprovisioning_rotates_the_secret(registry: SqlRegistry) -> None:
    provisioning = Provisioning(registry)
    creds = BrokerCredentials(registry)
    old = await creds.issue_gateway("gw-a", actor=OPERATOR)
    done = await provisioning.exchange((await provisioning.create("gw-a", actor=OPERATOR)).token)
    assert done.account.version == old.account.version + 1
    [entry] = [e for e in await creds.password_entries() if e.username == "gw-a"]
    assert verify_secret(done.secret, entry.password_hash)
    assert not verify_secret(old.secret, entry.password_hash)
    await creds.revoke("gw-a", actor=OPERATOR)  # a revoked account is issued again
    again = await provisioning.exchange((await provisioning.create("gw-a", actor=OPERATOR)).token)
    assert not again.account.revoked


async def test_concurrent_exchanges_one_wins(url: str, registry: SqlRegistry) -> None:
    """Two registries (two connection pools) on one database exchange the same token at once."""
    async with await SqlRegistry.open(url) as second:
        for _ in range(5):
            token = (await Provisioning(registry).create("gw-a", actor=OPERATOR)).token
            results = await asyncio.gather(
                Provisioning(registry).exchange(token), Provisioning(second).exchange(token), return_exceptions=True
            )
            won = [r for r in results if not isinstance(r, BaseException)]
            lost = [r for r in results if isinstance(r, BaseException)]
            assert len(won) == 1, results
            assert isinstance(lost[0], ProvisioningError), lost
            assert lost[0].refusal is Refusal.USED, lost
            [entry] = [e for e in await BrokerCredentials(registry).password_entries() if e.username == "gw-a"]
            assert verify_secret(won[0].secret, entry.password_hash)


# --- the HTTP API -------------------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        overrides={
            "api": {"operator_token": TOKEN},
            "store": {"path": str(tmp_path / "misto.db")},
            "registry": {"provisioning": {"broker_url": "mqtts://mqtt.city.example:8883", "max_failures": 3}},
        }
    )
    async with await SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        await seed(registry)
        app = create_app(settings, registry=registry)
        async with app.router.lifespan_context(app), client_for(app) as client:
            client.app_state = app.state  # type: ignore[attr-defined]
            yield client


TOKENS = "/api/v1/registry/gateways/{}/provisioning-tokens"


async def test_api_token_and_exchange(api: httpx.AsyncClient) -> None:
    assert (await api.post(TOKENS.format("gw-a"))).status_code == 401
    assert (await api.post(TOKENS.format("gw-a"), headers={"Authorization": "Bearer nope"})).status_code in {401, 403}
    assert (await api.post(TOKENS.format("gw-x"), headers=AUTH)).status_code == 404
    assert (await api.post(TOKENS.format("GW bad"), headers=AUTH)).status_code == 422
    response = await api.post(TOKENS.format("gw-a"), json={"ttl_s": 3600}, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    issued = response.json()
    assert issued["state"] == "pending"
    assert issued["created_by"] in {"operator", "token:operator"}  # the caller (Principal.subject)
    listed = (await api.get(TOKENS.format("gw-a"), headers=AUTH)).json()
    assert [t["id"] for t in listed] == [issued["id"]]
    assert "token" not in listed[0]

    answer = await api.post("/api/v1/provision", json={"token": issued["token"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["gateway_id"] == "gw-a"
    assert body["mqtt"]["url"] == "mqtts://mqtt.city.example:8883"
    assert body["mqtt"]["username"] == "gw-a"
    assert len(body["mqtt"]["password"]) >= 40
    assert [d["id"] for d in body["devices"]] == ["aq-a1", "aq-a2"]

    again = await api.post("/api/v1/provision", json={"token": issued["token"]})
    assert again.status_code == 410
    assert "already used" in again.json()["detail"]
    assert (await api.post("/api/v1/provision", json={"token": ""})).status_code == 422
    assert (await api.post("/api/v1/provision", json={})).status_code == 422


async def test_api_revoke(api: httpx.AsyncClient) -> None:
    issued = (await api.post(TOKENS.format("gw-a"), headers=AUTH)).json()
    path = TOKENS.format("gw-b") + f"/{issued['id']}"
    assert (await api.delete(path, headers=AUTH)).status_code == 404  # not gw-b's
    revoked = await api.delete(TOKENS.format("gw-a") + f"/{issued['id']}", headers=AUTH)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    assert (await api.delete(TOKENS.format("gw-a") + f"/{issued['id']}", headers=AUTH)).status_code == 409
    refused = await api.post("/api/v1/provision", json={"token": issued["token"]})
    assert refused.status_code == 410
    assert "revoked" in refused.json()["detail"]


async def test_api_counts_failures_and_limits_an_address(api: httpx.AsyncClient) -> None:
    issued = (await api.post(TOKENS.format("gw-a"), headers=AUTH)).json()
    for _ in range(3):
        assert (await api.post("/api/v1/provision", json={"token": "guess"})).status_code == 401
    limited = await api.post("/api/v1/provision", json={"token": issued["token"]})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    counts = guard_counts(api.app_state)  # type: ignore[attr-defined]
    assert counts == {"provisioned": 0, "unknown": 3, "rate_limited": 1}


def test_failure_window_slides() -> None:
    now = [0.0]
    guard = FailureGuard(2, 60.0, clock=lambda: now[0])
    guard.fail("10.0.0.1", Refusal.UNKNOWN)
    guard.fail("10.0.0.1", Refusal.EXPIRED)
    guard.check("10.0.0.2")
    with pytest.raises(Exception, match="too many failed"):
        guard.check("10.0.0.1")
    now[0] = 60.5
    guard.check("10.0.0.1")


# --- broker files kept in step ------------------------------------------------------------------


async def test_keeper_writes_only_on_change(registry: SqlRegistry, tmp_path: Path) -> None:
    keeper = BrokerFilesKeeper(registry, tmp_path / "passwd", tmp_path / "acl")
    first = await keeper.sync()
    assert first is not None
    assert first.usernames == ()
    assert await keeper.sync() is None  # nothing changed
    done = await Provisioning(registry).exchange((await Provisioning(registry).create("gw-a", actor=OPERATOR)).token)
    written = await keeper.sync()
    assert written is not None
    assert written.gateways == ("gw-a",)
    assert (tmp_path / "passwd").read_text().count("gw-a:$7$") == 1
    assert done.secret not in (tmp_path / "passwd").read_text()
    assert "user gw-a" in (tmp_path / "acl").read_text()
    gateway = await registry.get_gateway("gw-a")
    await registry.update_gateway(
        "gw-a", GatewayUpdate(status=Lifecycle.RETIRED), version=gateway.version, actor=OPERATOR
    )
    assert (await keeper.sync()) is not None  # decommissioned: out of the files
    assert "gw-a" not in (tmp_path / "passwd").read_text()
    assert keeper.writes == 3


async def test_keeper_reports_a_bad_pid_file(registry: SqlRegistry, tmp_path: Path) -> None:
    (tmp_path / "broker.pid").write_text("nonsense\n")
    keeper = BrokerFilesKeeper(registry, tmp_path / "passwd", tmp_path / "acl", reload_pid_file=tmp_path / "broker.pid")
    with pytest.raises(BrokerFilesError, match="does not hold a process id"):
        await keeper.sync()
    assert await keeper.try_sync() is None
    assert keeper.failures == 1
    missing = BrokerFilesKeeper(registry, tmp_path / "p2", tmp_path / "a2", reload_pid_file=tmp_path / "gone.pid")
    with pytest.raises(BrokerFilesError, match="cannot read the broker's pid file"):
        await missing.sync()


# --- device ownership from the registry -------------------------------------------------------


async def test_registry_ownership(registry: SqlRegistry) -> None:
    owners = await RegistryOwnership.load(registry)
    assert len(owners) == 3
    assert owners.claim("aq-a1", "gw-a") is None
    assert owners.claim("aq-b1", "gw-a") == "gw-b"
    assert refusal("aq-b1", "gw-a", "gw-b") == "device 'aq-b1' belongs to gateway 'gw-b', not 'gw-a'"
    # unregistered, first_gateway: kept to the first gateway until the registry says otherwise
    assert owners.claim("aq-new", "gw-a") is None
    assert owners.claim("aq-new", "gw-b") == "gw-a"
    await registry.create_device(
        DeviceCreate(id="aq-new", gateway_id="gw-b", model_id="aq1", organisation="City"), actor=OPERATOR
    )
    assert await owners.refresh()
    assert owners.claim("aq-new", "gw-b") is None
    assert owners.claim("aq-new", "gw-a") == "gw-b"


async def test_registry_ownership_refuses_unregistered_and_refreshes_soon(registry: SqlRegistry) -> None:
    owners = await RegistryOwnership.load(registry, unregistered=UnregisteredDevices.REFUSE, refresh_s=3600)
    assert owners.claim("aq-late", "gw-a") == UNREGISTERED
    assert "is not in the registry" in refusal("aq-late", "gw-a", UNREGISTERED)
    await registry.create_device(
        DeviceCreate(id="aq-late", gateway_id="gw-a", model_id="aq1", organisation="City"), actor=OPERATOR
    )
    task = asyncio.create_task(owners.run())
    try:
        owners.claim("aq-late", "gw-a")  # asks for a refresh; the hourly one is far off
        deadline = asyncio.get_running_loop().time() + 10
        while owners.owner("aq-late") is None:
            assert asyncio.get_running_loop().time() < deadline, "the refresh did not come"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert owners.claim("aq-late", "gw-a") is None
