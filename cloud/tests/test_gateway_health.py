"""Gateways' health messages end to end: a gateway publishes on a real Mosquitto, the real ingester
keeps the newest per gateway, the API shows its summary and (to operators) the whole message."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cloud.tests.support import T0, Gateway, RunningIngester, eventually, health
from misto.cloud.api import create_app
from misto.cloud.settings import load_settings
from misto.cloud.storage import DeadLetterKind
from misto.protocol import Channel, DeviceState, codec, topics

HEALTH = topics.build("gw-test", Channel.HEALTH)
TOKEN = "operator-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(ingest: RunningIngester) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        load_settings(overrides={"api": {"operator_token": TOKEN}}), store=ingest.store, ingest=ingest.stats
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client


async def listed_health(api: httpx.AsyncClient) -> dict[str, Any] | None:
    gateways = (await api.get("/api/v1/gateways")).json()
    found: dict[str, Any] | None = next((g["health"] for g in gateways if g["gateway"] == "gw-test"), None)
    return found


async def test_the_newest_health_is_kept_and_served(
    ingest: RunningIngester, gw: Gateway, api: httpx.AsyncClient
) -> None:
    first = health(at=T0, states=(DeviceState.AVAILABLE, DeviceState.UNAVAILABLE, DeviceState.UNAVAILABLE))
    gw.publish(HEALTH, codec.encode(first))
    summary = await eventually(lambda: listed_health(api), what="the health summary of gw-test")
    assert summary["at"] == "2025-03-01T12:00:00Z"
    assert (summary["uptime_s"], summary["cpu_s"], summary["rss_bytes"]) == (600.0, 4.25, 38_912_000)
    assert summary["buffer"] == {"depth": 3, "oldest_age_s": 12.5, "dropped": 2}
    assert summary["devices"] == {"ok": 1, "failing": 2, "starting": 0}

    newer = health(at=T0 + timedelta(minutes=1), uptime_s=660.0, depth=0, states=(DeviceState.AVAILABLE,) * 3)
    older = health(at=T0 - timedelta(minutes=1), uptime_s=540.0, depth=7)
    gw.publish(HEALTH, codec.encode(newer))
    gw.publish(HEALTH, codec.encode(older))  # late: must not replace the newer one

    async def both_handled() -> bool:
        return ingest.stats.health_stored == 2 and ingest.stats.health_stale == 1

    await eventually(both_handled, what="the newer health stored and the older one counted stale")
    summary = await listed_health(api)
    assert summary is not None
    assert (summary["at"], summary["uptime_s"]) == ("2025-03-01T12:01:00Z", 660.0)
    assert summary["buffer"] == {"depth": 0, "oldest_age_s": None, "dropped": 2}
    assert summary["devices"] == {"ok": 3, "failing": 0, "starting": 0}

    assert (await api.get("/api/v1/gateways/gw-test/health")).status_code == 401
    whole = await api.get("/api/v1/gateways/gw-test/health", headers=AUTH)
    assert whole.status_code == 200, whole.text
    assert whole.json()["health"] == json.loads(codec.encode(newer))
    assert whole.json()["received_at"] == summary["received_at"]
    assert (await api.get("/api/v1/gateways/gw-none/health", headers=AUTH)).status_code == 404
    stats = (await api.get("/health")).json()["ingester"]
    assert (stats["health_stored"], stats["health_stale"], stats["dead_letters"]["decode"]) == (2, 1, 0)
    assert ingest.stats.dead_letters_total == 0


async def test_bad_health_payloads_are_dead_lettered(
    ingest: RunningIngester, gw: Gateway, api: httpx.AsyncClient
) -> None:
    body = json.loads(codec.encode(health()))
    gw.publish(HEALTH, b'{"schema": 1, "gateway": "gw-test", ')
    gw.publish(HEALTH, json.dumps({**body, "uptime_s": -1}).encode())
    gw.publish(HEALTH, json.dumps({**body, "schema": 2}).encode())
    gw.publish(HEALTH, codec.encode(health("gw-other")))  # gw-test claims to be another gateway
    gw.publish(HEALTH, codec.encode(health(at=T0 + timedelta(minutes=5))))  # and a good one after them

    async def all_handled() -> bool:
        return ingest.stats.acked == 5

    await eventually(all_handled, what="five health messages acknowledged")
    letters = (await api.get("/api/v1/dead-letters", headers=AUTH)).json()
    assert sorted((d["kind"], d["field"], d["topic"]) for d in letters) == [
        ("decode", "$", HEALTH),
        ("decode", "$.uptime_s", HEALTH),
        ("gateway_mismatch", "$.gateway", HEALTH),
        ("schema", "$.schema", HEALTH),
    ]
    mismatch = next(d for d in letters if d["kind"] == "gateway_mismatch")
    assert mismatch["reason"] == "payload gateway 'gw-other' differs from the topic's gateway 'gw-test'"
    assert json.loads(mismatch["payload"])["gateway"] == "gw-other"  # kept whole for the operator
    assert ingest.stats.dead_letters[DeadLetterKind.DECODE] == 2
    assert ingest.stats.health_stored == 1
    summary = await listed_health(api)
    assert summary is not None
    assert summary["at"] == "2025-03-01T12:05:00Z"
    gateways = {g["gateway"] for g in (await api.get("/api/v1/gateways")).json()}
    assert gateways == {"gw-test"}  # the mismatched payload made no "gw-other" known
