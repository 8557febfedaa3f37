"""The shared fixtures themselves: the broker enforces passwords and ACLs."""

from __future__ import annotations

import subprocess

from tests.fixtures.mosquitto import BrokerInfo, find_binary


def _pub(
    broker: BrokerInfo, user: str, password: str, topic: str, message: str = "x"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            find_binary("mosquitto_pub"),
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-u",
            user,
            "-P",
            password,
            "-t",
            topic,
            "-m",
            message,
            "-q",
            "1",
            "-V",
            "mqttv5",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def _sub_one(broker: BrokerInfo, user: str, topic: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            find_binary("mosquitto_sub"),
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "-u",
            user,
            "-P",
            broker.users[user],
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            "10",
            "-V",
            "mqttv5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_anonymous_and_wrong_password_are_refused(mosquitto: BrokerInfo) -> None:
    anon = subprocess.run(
        [
            find_binary("mosquitto_pub"),
            "-h",
            mosquitto.host,
            "-p",
            str(mosquitto.port),
            "-t",
            "misto/v1/x/telemetry",
            "-m",
            "x",
            "-q",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert anon.returncode != 0
    assert _pub(mosquitto, "gw-test", "wrong", "misto/v1/gw-test/telemetry").returncode != 0


def test_gateway_publishes_only_under_its_own_topics(mosquitto: BrokerInfo) -> None:
    other_pw = mosquitto.add_gateway("gw-other")
    sub = _sub_one(mosquitto, "admin", "misto/v1/+/telemetry")
    try:
        # gw-other may not publish as gw-test: the broker drops it (MQTT v5 PUBACK 'not authorized').
        _pub(mosquitto, "gw-other", other_pw, "misto/v1/gw-test/telemetry", "forged")
        assert _pub(mosquitto, "gw-other", other_pw, "misto/v1/gw-other/telemetry", "legit").returncode == 0
        out, _ = sub.communicate(timeout=15)
    finally:
        sub.kill()
        sub.wait()
    assert out.strip() == "legit"
