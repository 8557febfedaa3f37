"""The MQTT adapter's cheaper receive path (``misto.cloud.ingest.paho_client.FastClient``): fed the same bytes
as paho's own path, through a real socket, it hands over the same messages (topic, payload, mid,
QoS, DUP, RETAIN), reads many packets per system call across chunk boundaries, and leaves to paho
what it does not handle (MQTT 5 properties, QoS 2)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from misto.cloud.ingest import paho_client as mqtt

Received = tuple[str, bytes, int, int, bool, bool]


def publish_packet(topic: str, payload: bytes, *, mid: int, qos: int, v5: bool, dup: bool = False,
                   retain: bool = False, properties: bytes = b"") -> bytes:  # fmt: skip
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name + (struct.pack("!H", mid) if qos else b"")
    if v5:
        body += bytes([len(properties)]) + properties  # property lengths below 128 here
    body += payload
    header = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([header]) + bytes(encoded) + body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def receive(client_class: type[paho.Client], sock: socket.socket, *, v5: bool) -> tuple[paho.Client, list[Received]]:
    client = client_class(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5 if v5 else paho.MQTTv311, manual_ack=True)
    got: list[Received] = []

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        got.append((msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.dup), bool(msg.retain)))

    def raw(topic: str, payload: bytes, mid: int, header: int) -> None:
        got.append((topic, payload, mid, (header >> 1) & 3, bool(header & 8), bool(header & 1)))

    client.on_message = on_message
    if isinstance(client, mqtt.FastClient):
        client.raw_publish = raw
    client._sock = sock  # what connect() would have set
    return client, got


def drain(client: paho.Client, got: list[Received], expected: int, sender: socket.socket, data: bytes) -> None:
    """Send ``data`` from a thread and loop_read until ``expected`` messages are in (10 s at most)."""
    thread = threading.Thread(target=sender.sendall, args=(data,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(got) < expected:
        assert time.monotonic() < deadline, f"{len(got)} of {expected} messages received"
        assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    thread.join(10)
    assert not thread.is_alive()
    client._sock = None  # the fixture closes it, not paho when the client goes


PACKETS = [
    {"topic": "misto/v1/gw-1/telemetry", "payload": b'{"a":1}', "mid": 1, "qos": 1},
    {"topic": "misto/v1/gw-2/telemetry", "payload": b"x" * 70_000, "mid": 2, "qos": 1},  # crosses 64 KiB chunks
    {"topic": "misto/v1/gw-3/status", "payload": b"online", "mid": 0, "qos": 0, "retain": True},
    {"topic": "misto/v1/gw-1/telemetry", "payload": b'{"a":2}', "mid": 65535, "qos": 1, "dup": True},
    {"topic": "misto/v1/gw-4/telemetry", "payload": b"", "mid": 7, "qos": 1},
    {"topic": "misto/v1/gw-5/health", "payload": "é".encode(), "mid": 8, "qos": 1},
]


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_the_fast_path_hands_over_what_paho_does(pair: tuple[socket.socket, socket.socket], v5: bool) -> None:
    ours, theirs = pair
    stream = b"".join(publish_packet(**p, v5=v5) for p in PACKETS * 50)  # type: ignore[arg-type]
    results = []
    for client_class in (paho.Client, mqtt.FastClient):
        client, got = receive(client_class, ours, v5=v5)
        drain(client, got, len(PACKETS) * 50, theirs, stream)
        results.append(got)
    stock, fast = results
    assert len(stock) == len(PACKETS) * 50
    assert fast == stock


def test_the_fast_path_reads_many_packets_per_system_call(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    stream = b"".join(publish_packet("t/x", b"p" * 100, mid=i + 1, qos=1, v5=True) for i in range(200))
    client, got = receive(mqtt.FastClient, ours, v5=True)
    recv_calls = 0
    real_recv = paho.Client._sock_recv

    def counting(self: paho.Client, bufsize: int) -> bytes:
        nonlocal recv_calls
        data = real_recv(self, bufsize)  # raises BlockingIOError while nothing is there: not counted
        recv_calls += 1
        return data

    paho.Client._sock_recv = counting  # type: ignore[method-assign]
    try:
        drain(client, got, 200, theirs, stream)
    finally:
        paho.Client._sock_recv = real_recv  # type: ignore[method-assign]
    assert [m[2] for m in got] == list(range(1, 201))
    assert recv_calls <= 10  # 200 packets of 110 bytes in a few reads, not 600 as paho alone


@pytest.mark.parametrize("qos", [1, 2])
def test_properties_and_qos2_take_pahos_path(pair: tuple[socket.socket, socket.socket], qos: int) -> None:
    ours, theirs = pair
    content_type = b"\x03" + struct.pack("!H", 16) + b"application/json"
    properties = content_type if qos == 1 else b""
    packet = publish_packet("t/p", b"{}", mid=9, qos=qos, v5=True, properties=properties)
    client, got = receive(mqtt.FastClient, ours, v5=True)
    raw: list[object] = []
    assert isinstance(client, mqtt.FastClient)
    client.raw_publish = lambda *args: raw.append(args)

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        got.append((msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.dup), bool(msg.retain)))
        if qos == 1:
            assert msg.properties is not None
            assert getattr(msg.properties, "ContentType", None) == "application/json"

    client.on_message = on_message
    if qos == 2:  # paho keeps it until PUBREL (and answers PUBREC); nothing reaches raw_publish
        theirs.sendall(packet)
        deadline = time.monotonic() + 10
        while client._in_messages.get(9) is None:
            assert time.monotonic() < deadline
            client.loop_read()
        assert not got
        client._sock = None
    else:
        drain(client, got, 1, theirs, packet)
        assert got == [("t/p", b"{}", 9, 1, False, False)]
    assert not raw
