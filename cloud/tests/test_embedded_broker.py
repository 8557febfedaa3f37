"""The embedded amqtt broker: password authentication, topic rights, and the ingester on top.

The broker runs in this test's event loop, so the (blocking) gateway client runs in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cloud.tests.support import Gateway, eventually, start_ingester, subscriber_config, telemetry
from misto.cloud.embedded_broker import BrokerAccount, EmbeddedBroker, covers, topic_rights
from misto.cloud.errors import BrokerStartError
from misto.cloud.settings import BrokerRole, MqttVersion
from misto.cloud.storage.sqlite import SqliteStore
from misto.protocol import Channel, codec, topics
from tests.fixtures.net import LOOPBACK, free_port

GW_PASSWORD = "gw-1-password-for-tests"
INGESTER_PASSWORD = "ingester-password-for-tests"
ACCOUNTS = [
    BrokerAccount("gw-1", GW_PASSWORD, BrokerRole.GATEWAY),
    BrokerAccount("ingester", INGESTER_PASSWORD, BrokerRole.INGESTER),
]


async def test_gateway_publishes_with_password_and_the_ingester_stores_it(
    store: SqliteStore, gateway_factory: Callable[..., Gateway]
) -> None:
    port = free_port()
    async with EmbeddedBroker(host=LOOPBACK, port=port, accounts=ACCOUNTS) as broker:
        assert broker.url == f"mqtt://{LOOPBACK}:{port}"
        config = subscriber_config(LOOPBACK, port, "ingester", INGESTER_PASSWORD, protocol=MqttVersion.V311)
        running = await start_ingester(store, config)
        try:
            gw = await asyncio.to_thread(gateway_factory, LOOPBACK, port, "gw-1", GW_PASSWORD, v5=False)
            await asyncio.to_thread(gw.send, telemetry("gw-1", seq=1))

            async def stored() -> bool:
                return running.stats.telemetry_stored == 1

            await eventually(stored, what="telemetry through the embedded broker")
            # Another gateway's topic: the broker accepts the PUBLISH but forwards nothing.
            other = topics.build("gw-2", Channel.TELEMETRY)
            await asyncio.to_thread(gw.publish, other, codec.encode(telemetry("gw-2", seq=1)))
            await asyncio.to_thread(gw.send, telemetry("gw-1", seq=2))

            async def second() -> bool:
                return running.stats.telemetry_stored == 2

            await eventually(second, what="the second message of gw-1")
            assert running.stats.messages_received == 2
            assert [d.gateway for d in await store.devices()] == ["gw-1"]
        finally:
            await running.stop()


@pytest.mark.parametrize(
    ("username", "password"),
    [("gw-1", "wrong-password"), ("nobody", GW_PASSWORD), (None, None)],
    ids=["wrong-password", "unknown-user", "anonymous"],
)
async def test_bad_credentials_are_refused(
    gateway_factory: Callable[..., Gateway], username: str | None, password: str | None
) -> None:
    port = free_port()
    async with EmbeddedBroker(host=LOOPBACK, port=port, accounts=ACCOUNTS):
        client = await asyncio.to_thread(gateway_factory, LOOPBACK, port, username, password, v5=False)
        connack = await asyncio.to_thread(client.wait_connack)
        assert connack.is_failure
        assert str(connack) in ("Not authorized", "Bad user name or password")


async def test_gateway_may_not_subscribe_to_other_gateways(gateway_factory: Callable[..., Gateway]) -> None:
    port = free_port()
    async with EmbeddedBroker(host=LOOPBACK, port=port, accounts=ACCOUNTS):
        gw = await asyncio.to_thread(gateway_factory, LOOPBACK, port, "gw-1", GW_PASSWORD, v5=False)
        assert not (await asyncio.to_thread(gw.wait_connack)).is_failure
        gw.client.subscribe([(topics.build("gw-1", Channel.CONFIG), 1), (topics.subscription(Channel.TELEMETRY), 1)])

        async def suback() -> list[bool]:
            return [code.is_failure for code in gw.suback]

        assert await eventually(suback, what="SUBACK") == [False, True]


async def test_port_in_use_is_a_clear_error() -> None:
    port = free_port()
    async with EmbeddedBroker(host=LOOPBACK, port=port, accounts=ACCOUNTS):
        with pytest.raises(BrokerStartError, match=f"{LOOPBACK}:{port} could not start"):
            await EmbeddedBroker(host=LOOPBACK, port=port, accounts=ACCOUNTS).start()


def test_topic_rights_by_role() -> None:
    publish, subscribe = topic_rights(ACCOUNTS[0])
    assert publish == [f"misto/v1/gw-1/{c}" for c in ("ack", "health", "status", "telemetry")]
    assert subscribe == ["misto/v1/gw-1/cmd", "misto/v1/gw-1/config"]
    publish, subscribe = topic_rights(ACCOUNTS[1])
    assert publish == ["misto/v1/+/cmd", "misto/v1/+/config"]
    assert "misto/v1/+/telemetry" in subscribe
    assert topic_rights(BrokerAccount("root", "x" * 20, BrokerRole.ADMIN)) == (["misto/#"], ["misto/#"])
    with pytest.raises(ValueError, match="gateway id"):
        BrokerAccount("Not A Gateway", "x" * 20, BrokerRole.GATEWAY)


@pytest.mark.parametrize(
    ("pattern", "requested", "allowed"),
    [
        ("misto/v1/gw-1/telemetry", "misto/v1/gw-1/telemetry", True),
        ("misto/v1/gw-1/telemetry", "misto/v1/gw-2/telemetry", False),
        ("misto/v1/+/telemetry", "misto/v1/gw-2/telemetry", True),
        ("misto/v1/+/telemetry", "misto/v1/+/telemetry", True),
        ("misto/v1/gw-1/telemetry", "misto/v1/+/telemetry", False),
        ("misto/v1/+/telemetry", "misto/v1/#", False),
        ("misto/#", "misto/v1/#", True),
        ("misto/#", "other/v1/x", False),
        ("misto/v1/+/telemetry", "misto/v1/gw-1/telemetry/extra", False),
        ("misto/v1/+/telemetry", "misto/v1/gw-1", False),
    ],
)
def test_covers(pattern: str, requested: str, allowed: bool) -> None:
    assert covers(pattern, requested) is allowed
