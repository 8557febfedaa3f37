"""One MQTT CONNECT with the gateway's settings, for ``misto-edge doctor``: does the broker accept
these credentials (and this TLS set-up)? Part of the MQTT adapter: paho-mqtt stays behind it.

The probe uses its own client id (``<client id>-doctor-<random>``): connecting with the agent's
client id would make the broker disconnect a running agent.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from misto.edge.errors import UplinkError
from misto.edge.settings import BrokerSettings
from misto.edge.uplink.tls import tls_context


@dataclass(frozen=True, slots=True)
class ProbeResult:
    accepted: bool
    detail: str
    seconds: float


def probe_connect(broker: BrokerSettings, *, client_id: str, timeout: float = 5.0) -> ProbeResult:
    """Connect, wait for CONNACK (at most ``timeout``), disconnect. Never raises for network trouble."""
    v5 = broker.protocol == "5"
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"{client_id[:48]}-doctor-{secrets.token_hex(3)}",
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        reconnect_on_failure=False,
    )
    client.connect_timeout = timeout
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.resolved_password())
    started = time.monotonic()
    answer: list[Any] = []
    client.on_connect = lambda c, userdata, flags, reason, props: answer.append(reason)
    try:
        if broker.use_tls:
            client.tls_set_context(tls_context(broker))
        client.connect(broker.host, broker.port, keepalive=max(5, round(timeout)))
    except (OSError, UplinkError) as exc:
        return ProbeResult(False, f"{exc.__class__.__name__}: {exc}", time.monotonic() - started)
    try:
        deadline = started + timeout
        while not answer and time.monotonic() < deadline:
            if client.loop(timeout=0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        elapsed = time.monotonic() - started
        if not answer:
            return ProbeResult(False, f"no CONNACK within {timeout:g}s (connection closed or broker silent)", elapsed)
        reason = answer[0]
        if reason.is_failure:
            return ProbeResult(False, f"broker refused the connection: {reason}", elapsed)
        client.disconnect()
        client.loop(timeout=0.1)
        return ProbeResult(True, "accepted", elapsed)
    finally:
        sock = client.socket()
        if sock is not None:
            sock.close()
