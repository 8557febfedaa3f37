"""The MQTT adapter's publish against a real Mosquitto: it returns on PUBACK and fails clearly when
there is no link, when the broker refuses, when no PUBACK comes in time and when the link drops."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import httpx
import pytest

from cloud.tests.support import Gateway, eventually, subscriber_config
from misto.cloud.api import create_app
from misto.cloud.control import RemoteControl
from misto.cloud.errors import BrokerUnavailableError, PublishRefusedError
from misto.cloud.ingest.mqtt import MqttSubscriber
from misto.cloud.settings import load_settings
from misto.cloud.storage.sqlite_control import SqliteControlRepository
from misto.protocol import Channel, topics
from tests.fixtures.mosquitto import BrokerInfo

CONFIG_TOPIC = topics.build("gw-test", Channel.CONFIG)
CMD_TOPIC = topics.build("gw-test", Channel.CMD)
TOKEN = "operator-token-for-tests-0123456789"


async def connected_link(mosquitto: BrokerInfo, user: str, topic: str) -> MqttSubscriber:
    link = MqttSubscriber(subscriber_config(mosquitto.host, mosquitto.port, user, mosquitto.users[user]), [topic])
    await link.start()
    if not await link.wait_connected(10):
        await link.stop()
        raise AssertionError(f"no connection: {link.last_error}")
    return link


@pytest.fixture
async def link(mosquitto: BrokerInfo) -> AsyncIterator[MqttSubscriber]:
    link = await connected_link(mosquitto, "ingester", topics.subscription(Channel.ACK))
    try:
        yield link
    finally:
        await link.stop()


async def test_publish_returns_after_the_puback(link: MqttSubscriber, gw: Gateway) -> None:
    await asyncio.to_thread(gw.subscribe, CMD_TOPIC)
    await link.publish(CMD_TOPIC, b"one", qos=1)
    await link.publish(CMD_TOPIC, b"two", qos=0)

    async def both() -> list[bytes]:
        payloads = [bytes(m.payload) for m in gw.received(CMD_TOPIC)]
        return payloads if len(payloads) == 2 else []

    assert await eventually(both, what="both messages") == [b"one", b"two"]
    assert (link.stats.published, link.stats.publish_failures) == (2, 0)
    with pytest.raises(ValueError, match="qos must be"):
        await link.publish(CMD_TOPIC, b"x", qos=3)


async def test_publish_without_a_link_fails_at_once(mosquitto: BrokerInfo) -> None:
    link = MqttSubscriber(
        subscriber_config(mosquitto.host, mosquitto.port, "ingester", "wrong-password"),
        [topics.subscription(Channel.ACK)],
    )
    with pytest.raises(BrokerUnavailableError, match="not connected to the MQTT broker"):
        await link.publish(CONFIG_TOPIC, b"{}")  # never started
    await link.start()
    try:

        async def refused() -> str | None:
            return link.last_error

        await eventually(refused, what="the refused login")
        with pytest.raises(BrokerUnavailableError, match=r"not connected .*refused the connection") as exc:
            await link.publish(CONFIG_TOPIC, b"{}")
        assert exc.value.retryable
        assert exc.value.topic == CONFIG_TOPIC
    finally:
        await link.stop()
    assert link.stats.publish_failures == 2


async def test_a_publish_the_broker_refuses_is_a_permanent_error(mosquitto: BrokerInfo) -> None:
    # gw-test may read its config topic but not write it: Mosquitto answers PUBACK "Not authorized" (MQTT 5).
    as_gateway = await connected_link(mosquitto, "gw-test", CMD_TOPIC)
    try:
        with pytest.raises(PublishRefusedError, match="the broker refused it: Not authorized") as exc:
            await as_gateway.publish(CONFIG_TOPIC, b"{}", retain=True)
        assert not exc.value.retryable

        async def reconnected() -> bool:  # Mosquitto 2.0.11 also closes the connection after refusing
            return as_gateway.stats.connects == 2 and as_gateway.connected

        await eventually(reconnected, what="the link back after the refusal")
    finally:
        await as_gateway.stop()


async def test_no_puback_in_time_then_the_link_drops(link: MqttSubscriber, mosquitto: BrokerInfo) -> None:
    assert mosquitto.process is not None
    mosquitto.process.signal(signal.SIGSTOP)  # the broker hangs: it reads nothing, answers nothing
    try:
        with pytest.raises(BrokerUnavailableError, match=r"no PUBACK within 0\.3s \(the broker may still deliver it\)"):
            await link.publish(CONFIG_TOPIC, b"{}", timeout_s=0.3)
        waiting = asyncio.create_task(link.publish(CONFIG_TOPIC, b"{}", timeout_s=30))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        mosquitto.process.kill9()  # the connection drops while the publish waits for its PUBACK
        with pytest.raises(BrokerUnavailableError, match="connection to the broker was lost before its PUBACK"):
            await asyncio.wait_for(waiting, timeout=10)
    finally:
        if mosquitto.process.alive():
            mosquitto.process.signal(signal.SIGCONT)
    assert link.stats.publish_failures == 2


async def test_the_api_answers_502_when_the_broker_refuses_and_never_reuses_the_version(
    mosquitto: BrokerInfo, control_db: SqliteControlRepository
) -> None:
    as_gateway = await connected_link(mosquitto, "gw-test", CMD_TOPIC)
    try:
        control = RemoteControl(control_db, as_gateway, publish_timeout_s=5)
        app = create_app(load_settings(overrides={"api": {"operator_token": TOKEN}}), control=control)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as api:
            response = await api.put("/api/v1/gateways/gw-test/config", json={"config": {}}, headers=auth)
            assert response.status_code == 502
            assert "Not authorized" in response.json()["detail"]
            assert (await api.get("/api/v1/gateways/gw-test/config", headers=auth)).status_code == 404

            async def reconnected() -> bool:  # Mosquitto 2.0.11 closes the connection after refusing
                return as_gateway.stats.connects == 2 and as_gateway.connected

            await eventually(reconnected, what="the link back after the refusal")
            command = await api.post("/api/v1/gateways/gw-test/commands", json={"action": "poll_now"}, headers=auth)
            assert command.status_code == 502
            [listed] = (await api.get("/api/v1/gateways/gw-test/commands", headers=auth)).json()
            assert listed["state"] == "unsent"
            assert "Not authorized" in listed["publish_error"]
        status = await control_db.config_status("gw-test")
        assert (status.desired, status.next_version) == (None, 2)
    finally:
        await as_gateway.stop()
