"""The embedded amqtt broker: password authentication, topic rights, and the ingester on top.

The broker runs in this test's event loop, so the (blocking) gateway client runs in a thread.
Also the remote-control publish path (retained config, commands, acks) on MQTT 3.1.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from cloud.tests.support import Gateway, eventually, start_ingester, subscriber_config, telemetry
from misto.cloud.control import CommandState, RemoteControl
from misto.cloud.embedded_broker import BrokerAccount, EmbeddedBroker, covers, topic_rights
from misto.cloud.errors import BrokerStartError
from misto.cloud.settings import BrokerRole, MqttVersion
from misto.cloud.storage.sqlite import SqliteStore
from misto.cloud.storage.sqlite_control import SqliteControlRepository
from misto.protocol import Ack, AckResult, Channel, Command, ConfigUpdate, codec, topics
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


async def test_config_and_commands_through_the_embedded_broker(
    store: SqliteStore, control_db: SqliteControlRepository, gateway_factory: Callable[..., Gateway]
) -> None:
    """The publish path of remote control on amqtt (MQTT 3.1.1): retained config, command, acks."""
    port = free_port()
    config_topic, cmd_topic = topics.build("gw-1", Channel.CONFIG), topics.build("gw-1", Channel.CMD)
    async with EmbeddedBroker(host=LOOPBACK, port=port, accounts=ACCOUNTS):
        link = subscriber_config(LOOPBACK, port, "ingester", INGESTER_PASSWORD, protocol=MqttVersion.V311)
        running = await start_ingester(store, link, acks=control_db)
        try:
            control = RemoteControl(control_db, running.subscriber, publish_timeout_s=5)
            record = await control.send_command("gw-1", "restart_driver", {"device": "aq-1"})
            # Nobody listened yet: without a retained copy the command is not seen by a later subscriber.
            status = await control.set_config("gw-1", {"log_level": "debug"})
            assert status.desired is not None
            assert status.desired.version == 1
            gw = await asyncio.to_thread(gateway_factory, LOOPBACK, port, "gw-1", GW_PASSWORD, v5=False)
            await asyncio.to_thread(gw.subscribe, config_topic)
            await asyncio.to_thread(gw.subscribe, cmd_topic)

            async def retained_config() -> list[bytes]:
                return [bytes(m.payload) for m in gw.received(config_topic)]

            [payload] = await eventually(retained_config, what="the retained config")
            assert codec.decode(payload, ConfigUpdate).config == {"log_level": "debug"}
            assert gw.received(config_topic)[0].retain
            second = await control.send_command("gw-1", "poll_now", {})

            async def command() -> list[bytes]:
                return [bytes(m.payload) for m in gw.received(cmd_topic)]

            [sent] = await eventually(command, what="the command")
            assert codec.decode(sent, Command).id == second.id
            ack_topic = topics.build("gw-1", Channel.ACK)
            for ref in ("config:1", second.id):
                ack = Ack(schema=1, gateway="gw-1", ref=ref, result=AckResult.OK, at=datetime.now(UTC))
                await asyncio.to_thread(gw.publish, ack_topic, codec.encode(ack))

            async def answered() -> bool:
                return running.stats.acks_stored == 2

            await eventually(answered, what="both acks stored")
            assert (await control.config_status("gw-1")).applied_version == 1
            [newer, older] = await control.commands("gw-1", 10)
            assert newer.id == second.id
            assert newer.state(control.now()) is CommandState.OK
            assert older.id == record.id
            assert older.state(control.now()) is CommandState.PENDING  # sent while the gateway was away
        finally:
            await running.stop()
