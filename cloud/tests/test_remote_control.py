"""Remote configuration and commands through the HTTP API, a real Mosquitto and a real paho client
playing the gateway: what the gateway receives, what its acks change, and every refusal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cloud.tests.support import Gateway, RunningIngester, eventually, start_ingester, subscriber_config
from misto.cloud.api import create_app
from misto.cloud.control import RemoteControl
from misto.cloud.settings import load_settings
from misto.cloud.storage import DeadLetterKind
from misto.cloud.storage.sqlite import SqliteStore
from misto.cloud.storage.sqlite_control import SqliteControlRepository
from misto.protocol import Ack, AckResult, Channel, Command, ConfigUpdate, codec, topics
from tests.fixtures.mosquitto import BrokerInfo

TOKEN = "operator-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GW = "gw-test"
CONFIG_TOPIC = topics.build(GW, Channel.CONFIG)
CMD_TOPIC = topics.build(GW, Channel.CMD)
ACK_TOPIC = topics.build(GW, Channel.ACK)
CONFIG_URL = f"/api/v1/gateways/{GW}/config"
COMMANDS_URL = f"/api/v1/gateways/{GW}/commands"


@dataclass
class Cloud:
    api: httpx.AsyncClient
    ingest: RunningIngester
    control: RemoteControl
    control_db: SqliteControlRepository


@pytest.fixture
async def cloud(store: SqliteStore, control_db: SqliteControlRepository, mosquitto: BrokerInfo) -> AsyncIterator[Cloud]:
    config = subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
    running = await start_ingester(store, config, acks=control_db)
    control = RemoteControl(control_db, running.subscriber, publish_timeout_s=5.0)
    settings = load_settings(overrides={"api": {"operator_token": TOKEN}})
    app = create_app(settings, store=store, ingest=running.stats, control=control)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as api:
            yield Cloud(api, running, control, control_db)
    finally:
        await running.stop()


@pytest.fixture
def listening_gw(gw: Gateway) -> Gateway:
    """The gateway, subscribed to its config and cmd topics as the agent is."""
    gw.subscribe(CONFIG_TOPIC)
    gw.subscribe(CMD_TOPIC)
    return gw


def answer(gw: Gateway, ref: str, result: AckResult = AckResult.OK, detail: str = "", *, gateway: str = GW) -> None:
    message = Ack(schema=1, gateway=gateway, ref=ref, result=result, at=datetime.now(UTC), detail=detail)
    gw.publish(ACK_TOPIC, codec.encode(message))


async def received(gw: Gateway, topic: str, count: int) -> list[bytes]:
    async def enough() -> list[bytes]:
        payloads = [bytes(m.payload) for m in gw.received(topic)]
        return payloads if len(payloads) >= count else []

    return await eventually(enough, what=f"{count} message(s) on {topic}")


async def get_json(api: httpx.AsyncClient, url: str) -> Any:
    response = await api.get(url, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def error_at(response: httpx.Response, *loc: str | int) -> str:
    """The message of the 422 error at ``loc`` (FastAPI's format)."""
    assert response.status_code == 422, response.text
    errors: dict[tuple[str | int, ...], str] = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    assert loc in errors, errors
    return errors[loc]


async def test_a_config_reaches_the_gateway_retained_and_its_ack_shows_it_applied(
    cloud: Cloud, listening_gw: Gateway, mosquitto: BrokerInfo, gateway_factory: Callable[..., Gateway]
) -> None:
    config = {"poll_interval": "5s", "devices": [{"id": "aq-1", "driver": "modbus_tcp", "port": 5020}]}
    response = await cloud.api.put(CONFIG_URL, json={"config": config}, headers=AUTH)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["version"], body["state"], body["config"], body["ack"]) == (1, "pending", config, None)
    [payload] = await received(listening_gw, CONFIG_TOPIC, 1)
    assert codec.decode(payload, ConfigUpdate) == ConfigUpdate(schema=1, gateway=GW, version=1, config=config)
    # A gateway that subscribes later (after a restart) gets it too: it is retained.
    late = await asyncio.to_thread(gateway_factory, mosquitto.host, mosquitto.port, GW, mosquitto.users[GW])
    await asyncio.to_thread(late.subscribe, CONFIG_TOPIC)
    [retained] = await received(late, CONFIG_TOPIC, 1)
    assert late.received(CONFIG_TOPIC)[0].retain
    assert codec.decode(retained, ConfigUpdate).version == 1

    await asyncio.to_thread(answer, listening_gw, "config:1")

    async def applied() -> dict[str, Any] | None:
        state = await get_json(cloud.api, CONFIG_URL)
        return state if state["state"] == "applied" else None

    state = await eventually(applied, what="the config shown as applied")
    assert (state["version"], state["applied_version"], state["next_version"]) == (1, 1, 2)
    assert state["last_ack"]["version"] == 1
    assert (state["ack"]["result"], state["ack"]["detail"]) == ("ok", "")
    assert cloud.ingest.stats.acks_stored == 1
    assert cloud.ingest.stats.published == 1


async def test_a_failed_version_is_reported_and_the_applied_one_kept(cloud: Cloud, listening_gw: Gateway) -> None:
    assert (await cloud.api.put(CONFIG_URL, json={"config": {"log_level": "info"}}, headers=AUTH)).status_code == 202
    await asyncio.to_thread(answer, listening_gw, "config:1")
    second = await cloud.api.put(CONFIG_URL, json={"config": {"poll_interval": "-1s"}, "version": 7}, headers=AUTH)
    assert second.status_code == 202, second.text
    assert (second.json()["version"], second.json()["state"]) == (7, "pending")
    payloads = await received(listening_gw, CONFIG_TOPIC, 2)
    assert [codec.decode(p, ConfigUpdate).version for p in payloads] == [1, 7]
    reason = "poll_interval: must be positive; keeping version 1"
    await asyncio.to_thread(answer, listening_gw, "config:7", AckResult.ERROR, reason)

    async def failed() -> dict[str, Any] | None:
        state = await get_json(cloud.api, CONFIG_URL)
        return state if state["state"] == "failed" else None

    state = await eventually(failed, what="the config shown as failed")
    assert (state["version"], state["applied_version"], state["next_version"]) == (7, 1, 8)
    assert (state["ack"]["result"], state["ack"]["detail"]) == ("error", reason)
    assert (state["last_ack"]["version"], state["last_ack"]["detail"]) == (7, reason)
    # Versions only go up: reusing one would let a gateway skip it as already seen.
    stale = await cloud.api.put(CONFIG_URL, json={"config": {}, "version": 7}, headers=AUTH)
    assert stale.status_code == 409
    assert "version 7 is not greater than version 7" in stale.json()["detail"]
    assert "the next is 8" in stale.json()["detail"]


async def test_a_command_round_trip(cloud: Cloud, listening_gw: Gateway) -> None:
    args = {"device": "nm-1", "metric": "LAeq", "value": 1}
    response = await cloud.api.post(COMMANDS_URL, json={"action": "write", "args": args}, headers=AUTH)
    assert response.status_code == 202, response.text
    command = response.json()
    command_id = command["id"]
    assert response.headers["location"] == f"{COMMANDS_URL}/{command_id}"
    assert (command["state"], command["action"], command["args"], command["ack"]) == ("pending", "write", args, None)
    assert command["published_at"] is not None
    [payload] = await received(listening_gw, CMD_TOPIC, 1)
    assert codec.decode(payload, Command) == Command(schema=1, id=command_id, action="write", args=args)
    # MQTT 5: the broker drops a command the gateway does not take in time.
    expiry = listening_gw.received(CMD_TOPIC)[0].properties.MessageExpiryInterval  # type: ignore[union-attr]
    assert 0 < expiry <= 600
    assert not listening_gw.received(CMD_TOPIC)[0].retain

    poll = await cloud.api.post(COMMANDS_URL, json={"action": "poll_now"}, headers=AUTH)
    assert poll.status_code == 202, poll.text
    await received(listening_gw, CMD_TOPIC, 2)
    await asyncio.to_thread(answer, listening_gw, command_id, AckResult.ERROR, "register 0 is read-only")
    await asyncio.to_thread(answer, listening_gw, poll.json()["id"])

    async def both_answered() -> list[dict[str, Any]] | None:
        commands: list[dict[str, Any]] = await get_json(cloud.api, COMMANDS_URL)
        return commands if all(c["ack"] for c in commands) else None

    newest, oldest = await eventually(both_answered, what="both commands answered")
    assert (newest["action"], newest["state"], newest["args"]) == ("poll_now", "ok", {})
    assert (oldest["id"], oldest["state"]) == (command_id, "error")
    assert oldest["ack"]["detail"] == "register 0 is read-only"
    one = await get_json(cloud.api, f"{COMMANDS_URL}/{command_id}")
    assert one == oldest
    assert [c["action"] for c in await get_json(cloud.api, f"{COMMANDS_URL}?limit=1")] == ["poll_now"]
    missing = await cloud.api.get(f"{COMMANDS_URL}/no-such-command", headers=AUTH)
    assert missing.status_code == 404
    assert await get_json(cloud.api, "/api/v1/gateways/gw-other/commands") == []


async def test_acks_that_answer_nothing_are_dead_lettered(
    cloud: Cloud, listening_gw: Gateway, store: SqliteStore
) -> None:
    await asyncio.to_thread(answer, listening_gw, "config:3")
    await asyncio.to_thread(answer, listening_gw, "0123456789abcdef")
    await asyncio.to_thread(answer, listening_gw, "config:1", gateway="gw-other")  # on gw-test's topic
    await asyncio.to_thread(listening_gw.publish, ACK_TOPIC, b'{"schema": 1, "gateway": "gw-test"}')

    async def four() -> bool:
        return cloud.ingest.stats.dead_letters_total == 4

    await eventually(four, what="four dead letters")
    letters = sorted((d.letter.kind, d.letter.field, d.letter.reason) for d in await store.dead_letters(10))
    assert [(kind, field) for kind, field, _ in letters] == [
        (DeadLetterKind.DECODE, "$"),
        (DeadLetterKind.GATEWAY_MISMATCH, "$.gateway"),
        (DeadLetterKind.UNKNOWN_REF, "$.ref"),
        (DeadLetterKind.UNKNOWN_REF, "$.ref"),
    ]
    reasons = [reason for kind, _, reason in letters if kind is DeadLetterKind.UNKNOWN_REF]
    assert any("no such configuration version was sent to gateway 'gw-test'" in r for r in reasons)
    assert any("no such command" in r for r in reasons)
    assert cloud.ingest.stats.acks_stored == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [("PUT", CONFIG_URL), ("GET", CONFIG_URL), ("POST", COMMANDS_URL), ("GET", COMMANDS_URL)],
)
async def test_operator_token_required(cloud: Cloud, method: str, url: str) -> None:
    body: dict[str, object] = {"config": {}} if url == CONFIG_URL else {"action": "poll_now"}
    content = json.dumps(body) if method in ("PUT", "POST") else None
    missing = await cloud.api.request(method, url, content=content)
    assert missing.status_code == 401
    wrong = await cloud.api.request(method, url, content=content, headers={"Authorization": "Bearer wrong-token-xyz"})
    assert wrong.status_code == 401
    assert cloud.ingest.stats.published == 0


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"config": [1, 2]}, ("body", "config"), "valid dictionary"),
        ({}, ("body", "config"), "Field required"),
        ({"config": {}, "version": 0}, ("body", "version"), "greater than or equal to 1"),
        ({"config": {}, "version": "3"}, ("body", "version"), "valid integer"),
        ({"config": {}, "version": True}, ("body", "version"), "valid integer"),
        ({"config": {}, "extra": 1}, ("body", "extra"), "Extra inputs"),
        ({"config": {"broker": {"url": "mqtt://x"}}}, ("body", "config", "broker"), "only be set in the gateway's"),
        ({"config": {"gateway_id": "gw-9"}}, ("body", "config", "gateway_id"), "local file"),
        ({"config": {"devices": ["x" * 300_000]}}, ("body", "config"), "over the protocol's limit of 262144"),
    ],
)
async def test_bad_configs_are_422_naming_the_field(
    cloud: Cloud, body: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    response = await cloud.api.put(CONFIG_URL, json=body, headers=AUTH)
    assert message in error_at(response, *loc)
    assert cloud.ingest.stats.published == 0
    assert (await cloud.control_db.config_status(GW)).next_version == 1  # nothing recorded


async def test_numbers_json_cannot_carry_are_422(cloud: Cloud) -> None:
    body = b'{"config": {"devices": [{"scale": NaN}]}}'  # Python's JSON reader accepts NaN
    response = await cloud.api.put(CONFIG_URL, content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert "finite" in error_at(response, "body", "config", "devices", 0, "scale")


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"action": "reboot"}, ("body", "action"), "unknown action 'reboot'; known actions: poll_now, restart_driver"),
        ({"action": ""}, ("body", "action"), "at least 1 character"),
        ({"action": "restart_driver"}, ("body", "args", "device"), "required by action 'restart_driver'"),
        ({"action": "write", "args": {"device": "aq-1", "value": 1}}, ("body", "args"), "needs metric or address"),
        ({"action": "write", "args": {"device": 7, "metric": "x", "value": 1}}, ("body", "args", "device"), "string"),
        ({"action": "poll_now", "args": "aq-1"}, ("body", "args"), "valid dictionary"),
    ],
)
async def test_bad_commands_are_422_naming_the_field(
    cloud: Cloud, body: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    response = await cloud.api.post(COMMANDS_URL, json=body, headers=AUTH)
    assert message in error_at(response, *loc)
    assert await cloud.control_db.commands(GW, 10) == []


@pytest.mark.parametrize("url", [f"/api/v1/gateways/{'GW 1'}/config", "/api/v1/gateways/-gw/commands"])
async def test_bad_gateway_ids_are_422(cloud: Cloud, url: str) -> None:
    response = await cloud.api.get(url, headers=AUTH)
    assert "must be 1-63 characters" in error_at(response, "path", "gateway")


async def test_no_config_yet_is_404(cloud: Cloud) -> None:
    response = await cloud.api.get(CONFIG_URL, headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"detail": "no configuration has been published to gateway 'gw-test'"}


async def test_broker_down_is_503_and_records_nothing_then_works_again(
    cloud: Cloud, mosquitto: BrokerInfo, gateway_factory: Callable[..., Gateway]
) -> None:
    assert (await cloud.api.put(CONFIG_URL, json={"config": {"log_level": "info"}}, headers=AUTH)).status_code == 202
    mosquitto.stop()

    async def disconnected() -> bool:
        return not cloud.ingest.stats.connected

    await eventually(disconnected, what="the link to notice the broker is gone")
    down = await cloud.api.put(CONFIG_URL, json={"config": {"log_level": "debug"}}, headers=AUTH)
    assert down.status_code == 503
    assert down.headers["retry-after"] == "5"
    assert "broker link down" in down.json()["detail"]
    assert "not connected to the MQTT broker" in down.json()["detail"]
    command = await cloud.api.post(COMMANDS_URL, json={"action": "poll_now"}, headers=AUTH)
    assert command.status_code == 503
    # Reads do not need the broker, and nothing was recorded for the refused requests.
    state = await get_json(cloud.api, CONFIG_URL)
    assert (state["version"], state["next_version"]) == (1, 2)
    assert await get_json(cloud.api, COMMANDS_URL) == []

    mosquitto.start()

    async def reconnected() -> bool:
        return cloud.ingest.stats.connected

    await eventually(reconnected, what="the link to reconnect")
    again = await cloud.api.put(CONFIG_URL, json={"config": {"log_level": "debug"}}, headers=AUTH)
    assert again.status_code == 202, again.text
    assert again.json()["version"] == 2
    gw = await asyncio.to_thread(gateway_factory, mosquitto.host, mosquitto.port, GW, mosquitto.users[GW])
    await asyncio.to_thread(gw.subscribe, CONFIG_TOPIC)
    [retained] = await received(gw, CONFIG_TOPIC, 1)
    assert codec.decode(retained, ConfigUpdate).config == {"log_level": "debug"}


async def test_an_api_only_process_reads_but_cannot_send(tmp_path: Any) -> None:
    settings = load_settings(
        overrides={"api": {"operator_token": TOKEN}, "store": {"path": str(tmp_path / "misto.db")}}
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as api,
    ):
        assert (await api.get(COMMANDS_URL, headers=AUTH)).json() == []
        response = await api.put(CONFIG_URL, json={"config": {}}, headers=AUTH)
        assert response.status_code == 503
        assert "serves the API only" in response.json()["detail"]
    assert (tmp_path / "misto-control.db").exists()  # next to the store by default


async def test_concurrent_versions_reach_the_gateway_in_order(
    cloud: Cloud, listening_gw: Gateway, mosquitto: BrokerInfo, gateway_factory: Callable[..., Gateway]
) -> None:
    responses = await asyncio.gather(
        *(cloud.api.put(CONFIG_URL, json={"config": {"n": n}}, headers=AUTH) for n in range(5))
    )
    answered = {r.json()["version"]: r.json()["config"] for r in responses}  # each answers its own version
    assert sorted(answered) == [1, 2, 3, 4, 5]
    assert sorted(c["n"] for c in answered.values()) == [0, 1, 2, 3, 4]
    updates = [codec.decode(p, ConfigUpdate) for p in await received(listening_gw, CONFIG_TOPIC, 5)]
    assert [u.version for u in updates] == [1, 2, 3, 4, 5]
    assert {u.version: u.config for u in updates} == answered
    late = await asyncio.to_thread(gateway_factory, mosquitto.host, mosquitto.port, GW, mosquitto.users[GW])
    await asyncio.to_thread(late.subscribe, CONFIG_TOPIC)
    [retained] = await received(late, CONFIG_TOPIC, 1)
    assert codec.decode(retained, ConfigUpdate).version == 5  # never replaced by an older version
