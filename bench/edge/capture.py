"""The measuring subscriber: a paho-mqtt client on the bench's broker that stamps every message
with its arrival time (``time.time()``, the clock the gateways stamp readings with) and keeps the
raw payload. Decoding happens after the measurement window, so it costs the machine nothing while
the gateway is measured.

It can also answer ThingsBoard's session-limits request as ThingsBoard CE does (65,536-byte
payloads, 100 messages in flight, no rate limits): the ThingsBoard IoT Gateway sends no telemetry
until that request is answered.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from bench.edge.model import BenchError
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

TB_RPC_REQUEST = "v1/devices/me/rpc/request/"
TB_RPC_RESPONSE = "v1/devices/me/rpc/response/"
_NO_LIMIT = "0:0,"
TB_SESSION_LIMITS = {
    "maxPayloadSize": 65536,
    "maxInflightMessages": 100,
    "rateLimits": {"messages": _NO_LIMIT, "telemetryMessages": _NO_LIMIT, "telemetryDataPoints": _NO_LIMIT},
    "gatewayRateLimits": {"messages": _NO_LIMIT, "telemetryMessages": _NO_LIMIT, "telemetryDataPoints": _NO_LIMIT},
}


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # unix seconds when the subscriber got it
    topic: str
    payload: bytes


class Capture:
    """Subscribes to ``topic`` (QoS 1) and records every message. Use as a context manager."""

    def __init__(
        self, *, host: str, port: int, username: str, password: str, topic: str, answer_tb_limits: bool = False
    ) -> None:
        self.topic = topic
        self.arrivals: list[Arrival] = []
        self.limits_answered = 0
        self._answer_tb = answer_tb_limits
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-capture-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._host, self._port = host, port

    def __enter__(self) -> Capture:
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise BenchError(f"subscriber: cannot connect to {self._host}:{self._port}: {exc}") from None
        self._client.loop_start()
        if not self._subscribed.wait(timeout=10.0):
            self.close()
            raise BenchError(f"subscriber: no SUBACK for {self.topic!r} from {self._host}:{self._port} within 10s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            print(f"subscriber: broker refused the connection: {reason}")
            return
        topics = [(self.topic, 1)]
        if self._answer_tb:
            topics.append((TB_RPC_REQUEST + "+", 1))
        client.subscribe(topics)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            print(f"subscriber: subscription refused: {failed}")
            return
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        at = time.time()
        topic: str = message.topic
        payload = bytes(message.payload)
        if self._answer_tb and topic.startswith(TB_RPC_REQUEST):
            self._answer(client, topic, payload)
            return
        self.arrivals.append(Arrival(at, topic, payload))

    def _answer(self, client: mqtt.Client, topic: str, payload: bytes) -> None:
        try:
            request = json.loads(payload)
        except ValueError:
            return
        if isinstance(request, dict) and request.get("method") == "getSessionLimits":
            request_id = topic.removeprefix(TB_RPC_REQUEST)
            client.publish(TB_RPC_RESPONSE + request_id, json.dumps(TB_SESSION_LIMITS), qos=1)
            self.limits_answered += 1
