"""The HTTP API over a real SQLite store, through httpx's ASGI transport."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cloud.tests.support import T0, health
from misto.cloud.api import create_app
from misto.cloud.ingest import IngestStats
from misto.cloud.settings import CloudSettings, load_settings
from misto.cloud.storage import DeadLetter, DeadLetterKind
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol import GatewayState, Reading, codec

TOKEN = "operator-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings(**api: Any) -> CloudSettings:
    return load_settings(overrides={"api": {"operator_token": TOKEN, **api}})


async def seed(store: SqliteStore) -> None:
    await store.write_batch(
        "gw-1:b:1",
        "gw-1",
        [
            Reading("aq-1", "pm25", 10.0, "ug/m3", T0),
            Reading("aq-1", "pm25", 20.0, "ug/m3", T0 + timedelta(minutes=1)),
            Reading("aq-1", "temperature", 21.5, "Cel", T0 + timedelta(minutes=1)),
        ],
    )
    await store.write_batch("gw-2:b:1", "gw-2", [Reading("nm-1", "LAeq", 55.5, "dB(A)", T0)])
    await store.set_gateway_status(
        "gw-1", GatewayState.ONLINE, boot="b", at=T0, agent_version="0.1.0", received_at=T0 + timedelta(seconds=1)
    )
    await store.set_gateway_health(health("gw-1", boot="b"), received_at=T0 + timedelta(seconds=2))
    await store.dead_letter(
        DeadLetter(T0, "misto/v1/gw-1/telemetry", DeadLetterKind.DECODE, "invalid JSON", b"{oops", "gw-1", "$")
    )
    await store.dead_letter(
        DeadLetter(T0, "misto/v1/gw-2/telemetry", DeadLetterKind.DECODE, "bad", b"\xff\x00", "gw-2")
    )


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def api(store: SqliteStore) -> AsyncIterator[httpx.AsyncClient]:
    await seed(store)
    async with client_for(create_app(settings(), store=store)) as client:
        yield client


def query_error(response: httpx.Response, parameter: str) -> str:
    """The message of the 422 error naming ``parameter``, in FastAPI's format."""
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", parameter]
    message: str = error["msg"]
    return message


async def test_devices_list_latest_readings_with_units(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/devices")
    assert response.status_code == 200
    assert response.json() == [
        {
            "device": "aq-1",
            "gateway": "gw-1",
            "last_seen": "2025-03-01T12:01:00Z",
            "readings": [
                {"metric": "pm25", "value": 20.0, "unit": "ug/m3", "ts": "2025-03-01T12:01:00Z"},
                {"metric": "temperature", "value": 21.5, "unit": "Cel", "ts": "2025-03-01T12:01:00Z"},
            ],
        },
        {
            "device": "nm-1",
            "gateway": "gw-2",
            "last_seen": "2025-03-01T12:00:00Z",
            "readings": [{"metric": "LAeq", "value": 55.5, "unit": "dB(A)", "ts": "2025-03-01T12:00:00Z"}],
        },
    ]


async def test_latest_readings_filter(api: httpx.AsyncClient) -> None:
    everything = (await api.get("/api/v1/readings/latest")).json()
    assert [(r["device"], r["metric"]) for r in everything] == [
        ("aq-1", "pm25"),
        ("aq-1", "temperature"),
        ("nm-1", "LAeq"),
    ]
    only = (await api.get("/api/v1/readings/latest", params={"device": "aq-1", "metric": "pm25"})).json()
    assert only == [
        {
            "device": "aq-1",
            "metric": "pm25",
            "value": 20.0,
            "unit": "ug/m3",
            "ts": "2025-03-01T12:01:00Z",
            "gateway": "gw-1",
        }
    ]
    assert "unknown metric 'pm2.5'" in query_error(
        await api.get("/api/v1/readings/latest", params={"metric": "pm2.5"}), "metric"
    )


async def test_series_windows(api: httpx.AsyncClient) -> None:
    params = {"device": "aq-1", "metric": "pm25", "from": "2025-03-01T12:00:00Z", "to": "2025-03-01T15:00:00+02:00"}
    response = await api.get("/api/v1/series", params={**params, "every": "1m"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "device": "aq-1",
        "metric": "pm25",
        "unit": "ug/m3",
        "gateway": "gw-1",
        "from": "2025-03-01T12:00:00Z",
        "to": "2025-03-01T13:00:00Z",
        "every_s": 60.0,
        "resolution": "1m",
        "windows": [
            {"start": "2025-03-01T12:00:00Z", "mean": 10.0, "min": 10.0, "max": 10.0, "count": 1, "last": 10.0},
            {"start": "2025-03-01T12:01:00Z", "mean": 20.0, "min": 20.0, "max": 20.0, "count": 1, "last": 20.0},
        ],
    }
    hourly = (await api.get("/api/v1/series", params={**params, "every": "3600"})).json()
    assert hourly["resolution"] == "1h"
    assert [(w["start"], w["mean"], w["min"], w["max"], w["count"], w["last"]) for w in hourly["windows"]] == [
        ("2025-03-01T12:00:00Z", 15.0, 10.0, 20.0, 2, 20.0)
    ]


@pytest.mark.parametrize(("resolution", "used"), [("raw", "raw"), ("1m", "1m"), ("auto", "1h"), (None, "1h")])
async def test_series_resolution_is_honoured_and_reported(
    api: httpx.AsyncClient, resolution: str | None, used: str
) -> None:
    params = {"device": "aq-1", "metric": "pm25", "from": "2025-03-01T12:00:00Z", "to": "2025-03-01T14:00:00Z"}
    chosen = {} if resolution is None else {"resolution": resolution}
    response = await api.get("/api/v1/series", params={**params, "every": "1h", **chosen})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resolution"] == used
    assert [(w["mean"], w["count"], w["last"]) for w in body["windows"]] == [(15.0, 2, 20.0)]


async def test_series_list(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/series/list")
    assert response.status_code == 200, response.text
    assert [(s["device"], s["metric"], s["unit"], s["gateway"], s["first"], s["last"]) for s in response.json()] == [
        ("aq-1", "pm25", "ug/m3", "gw-1", "2025-03-01T12:00:00Z", "2025-03-01T12:01:00Z"),
        ("aq-1", "temperature", "Cel", "gw-1", "2025-03-01T12:01:00Z", "2025-03-01T12:01:00Z"),
        ("nm-1", "LAeq", "dB(A)", "gw-2", "2025-03-01T12:00:00Z", "2025-03-01T12:00:00Z"),
    ]
    only = (await api.get("/api/v1/series/list", params={"device": "nm-1"})).json()
    assert [s["metric"] for s in only] == ["LAeq"]
    assert (await api.get("/api/v1/series/list", params={"device": "nope"})).json() == []


@pytest.mark.parametrize(("every", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("90", 90)])
async def test_series_every_forms(api: httpx.AsyncClient, every: str, seconds: float) -> None:
    params = {"device": "aq-1", "metric": "pm25", "from": "2025-03-01T00:00:00Z", "to": "2025-03-02T00:00:00Z"}
    response = await api.get("/api/v1/series", params={**params, "every": every})
    assert response.status_code == 200, response.text
    assert response.json()["every_s"] == seconds


async def test_series_defaults_pick_a_window(api: httpx.AsyncClient) -> None:
    params = {"device": "aq-1", "metric": "pm25", "from": "2025-03-01T00:00:00Z", "to": "2025-03-08T00:00:00Z"}
    body = (await api.get("/api/v1/series", params=params)).json()
    assert body["every_s"] == 1800  # the first window length giving at most 500 windows over a week
    assert sum(w["count"] for w in body["windows"]) == 2
    recent = (await api.get("/api/v1/series", params={"device": "aq-1", "metric": "pm25"})).json()
    assert recent["every_s"] == 300  # the last 24 hours by default


@pytest.mark.parametrize(
    ("params", "parameter", "message"),
    [
        ({"every": "5 parsecs"}, "every", "must be a duration like 30s, 5m, 1h, 1d"),
        ({"every": "0s"}, "every", "must be between"),
        ({"every": "1s", "from": "2025-01-01T00:00:00Z"}, "every", "exceed the limit of 10000"),
        ({"to": "2025-03-01T11:00:00Z"}, "to", "must be after from"),
        ({"to": "2025-03-01T12:00:00Z"}, "to", "must be after from"),
        ({"from": "2025-03-01T12:00:00"}, "from", "timezone"),
        ({"from": "yesterday"}, "from", "datetime"),
        ({"metric": "pm1"}, "metric", "unknown metric 'pm1'"),
        ({"resolution": "5m"}, "resolution", "must be one of auto, raw, 1m, 1h"),
        ({"resolution": "1h", "every": "30m"}, "resolution", "must be a multiple of the 1h resolution"),
    ],
)
async def test_series_422_names_the_parameter(
    api: httpx.AsyncClient, params: dict[str, str], parameter: str, message: str
) -> None:
    base = {"device": "aq-1", "metric": "pm25", "from": "2025-03-01T12:00:00Z", "to": "2025-03-01T13:00:00Z"}
    response = await api.get("/api/v1/series", params={**base, **params})
    assert message in query_error(response, parameter)


async def test_series_missing_parameter_and_unknown_series(api: httpx.AsyncClient) -> None:
    assert query_error(await api.get("/api/v1/series", params={"metric": "pm25"}), "device") == "Field required"
    response = await api.get("/api/v1/series", params={"device": "aq-9", "metric": "pm25"})
    assert response.status_code == 404
    assert response.json() == {"detail": "no series for device 'aq-9' and metric 'pm25'"}


async def test_gateways(api: httpx.AsyncClient) -> None:
    gateways = (await api.get("/api/v1/gateways")).json()
    last_seen = [datetime.fromisoformat(g.pop("last_seen")) for g in gateways]
    assert gateways == [
        {
            "gateway": "gw-1",
            "state": "online",
            "boot": "b",
            "agent_version": "0.1.0",
            "status_at": "2025-03-01T12:00:00Z",
            "health": {
                "at": "2025-03-01T12:00:00Z",
                "received_at": "2025-03-01T12:00:02Z",
                "boot": "b",
                "uptime_s": 600.0,
                "cpu_s": 4.25,
                "rss_bytes": 38912000,
                "buffer": {"depth": 3, "oldest_age_s": 12.5, "dropped": 2},
                "devices": {"ok": 2, "failing": 1, "starting": 0},
            },
        },
        {"gateway": "gw-2", "state": None, "boot": None, "agent_version": None, "status_at": None, "health": None},
    ]
    assert all(seen > T0 + timedelta(seconds=1) for seen in last_seen)  # when the cloud received the telemetry


async def test_gateway_health_is_for_operators_and_404_without_one(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/gateways/gw-1/health")).status_code == 401
    wrong = await api.get("/api/v1/gateways/gw-1/health", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    response = await api.get("/api/v1/gateways/gw-1/health", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["gateway"], body["received_at"]) == ("gw-1", "2025-03-01T12:00:02Z")
    assert body["health"] == json.loads(codec.encode(health("gw-1", boot="b")))
    missing = await api.get("/api/v1/gateways/gw-2/health", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no health message from gateway 'gw-2' yet"}
    bad = await api.get("/api/v1/gateways/GW 1/health", headers=AUTH)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["path", "gateway"]


async def test_dead_letters_need_the_operator_token(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/dead-letters")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    basic = await api.get("/api/v1/dead-letters", headers={"Authorization": "Basic b3A6b3A="})
    assert basic.status_code == 401
    wrong = await api.get("/api/v1/dead-letters", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert wrong.json() == {"detail": "invalid operator token"}
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_dead_letters_for_the_operator(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/dead-letters", headers=AUTH)
    assert response.status_code == 200
    newest, oldest = response.json()
    assert (newest["gateway"], newest["payload_encoding"], newest["payload_bytes"]) == ("gw-2", "base64", 2)
    assert base64.b64decode(newest["payload"]) == b"\xff\x00"
    assert oldest == {
        "id": 1,
        "received_at": "2025-03-01T12:00:00Z",
        "topic": "misto/v1/gw-1/telemetry",
        "gateway": "gw-1",
        "kind": "decode",
        "reason": "invalid JSON",
        "field": "$",
        "message_id": None,
        "payload": "{oops",
        "payload_encoding": "utf-8",
        "payload_bytes": 5,
    }
    only = await api.get("/api/v1/dead-letters", headers=AUTH, params={"gateway": "gw-1", "limit": 5})
    assert [d["id"] for d in only.json()] == [1]
    assert query_error(await api.get("/api/v1/dead-letters", headers=AUTH, params={"limit": 0}), "limit")


async def test_dead_letters_disabled_without_a_configured_token(store: SqliteStore) -> None:
    app = create_app(load_settings(), store=store)
    async with client_for(app) as client:
        response = await client.get("/api/v1/dead-letters", headers=AUTH)
    assert response.status_code == 401
    assert "set api.operator_token" in response.json()["detail"]


async def test_health_reports_store_and_ingester(store: SqliteStore) -> None:
    await seed(store)
    stats = IngestStats(connected=True, messages_received=7, readings_stored=12)
    async with client_for(create_app(settings(), store=store, ingest=stats)) as client:
        body = (await client.get("/health")).json()
        assert body["status"] == "ok"
        counted_at = datetime.fromisoformat(body["store"].pop("counted_at"))
        assert abs((datetime.now(UTC) - counted_at).total_seconds()) < 60
        assert body["store"] == {
            "reachable": True,
            "error": None,
            "counts": {"series": 3, "readings": 4, "messages": 2, "dead_letters": 2, "gateways": 2},
        }
        assert (body["ingester"]["running"], body["ingester"]["messages_received"]) == (True, 7)
        await store.write_batch("gw-2:b:2", "gw-2", [Reading("nm-1", "LAeq", 56.0, "dB(A)", T0 + timedelta(minutes=1))])
        # counted again only once the cached totals are older than 30 s: probes stay cheap
        again = (await client.get("/health")).json()
        assert again["store"]["counts"]["readings"] == 4
        assert body["ingester"]["dead_letters"]["vocabulary"] == 0
        stats.connected = False
        assert (await client.get("/health")).json()["status"] == "degraded"
        await store.close()
        failing = await client.get("/health")
        assert failing.status_code == 503
        assert failing.json()["status"] == "failing"
        assert "closed" in failing.json()["store"]["error"]


async def test_api_only_process_opens_its_own_store(tmp_path: Path) -> None:
    app = create_app(load_settings(overrides={"store": {"path": str(tmp_path / "own.db")}}))
    async with app.router.lifespan_context(app), client_for(app) as client:
        body = (await client.get("/health")).json()
        assert (body["status"], body["ingester"]["running"]) == ("ok", False)
        assert (await client.get("/api/v1/devices")).json() == []
    assert (tmp_path / "own.db").exists()


async def test_public_page_and_docs(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert '<html lang="en">' in html
    assert "<title>Misto — live sensors</title>" in html
    assert "http://" not in html.replace('href="/', "")  # nothing from elsewhere (the machine may be offline)
    script = await api.get("/static/app.js")
    assert script.status_code == 200
    assert "/api/v1/devices" in script.text
    assert "innerHTML" not in script.text  # device names are data: text only
    assert (await api.get("/static/style.css")).status_code == 200
    assert (await api.get("/docs")).status_code == 200
    spec = (await api.get("/openapi.json")).json()
    assert {"/health", "/api/v1/devices", "/api/v1/readings/latest", "/api/v1/series", "/api/v1/gateways"} <= set(
        spec["paths"]
    )
    assert "/api/v1/dead-letters" in spec["paths"]
    assert {"put", "get"} <= set(spec["paths"]["/api/v1/gateways/{gateway}/config"])
    assert {"post", "get"} <= set(spec["paths"]["/api/v1/gateways/{gateway}/commands"])
    assert "/api/v1/gateways/{gateway}/commands/{command_id}" in spec["paths"]
