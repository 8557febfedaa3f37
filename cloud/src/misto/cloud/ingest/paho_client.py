"""paho-mqtt driven from the asyncio event loop, with a cheaper receive path; used only by
:mod:`misto.cloud.ingest.mqtt` (the two are the cloud's paho adapter).

Why: one single-reading message cost the ingester about 110 µs of CPU with paho in its own thread
(``loop_start``), half of it paho's: three ``recv`` calls and a ``select`` per packet, an MQTT 5
``Properties`` object (about 12 µs to build even when empty), an ``MQTTMessage`` with its own
``threading.Condition``, the topic matcher; then a lock and a wake-up of the event loop to hand the
message over, and a wake-up byte to paho's thread per acknowledgement. Here:

- :class:`SocketWatch` drives a connected client with paho's external-loop API (``loop_read``,
  ``loop_write``, ``loop_misc`` and the ``on_socket_*`` callbacks): the loop's ``add_reader`` and
  ``add_writer`` watch the socket, ``loop_misc`` runs once a second (keepalive). Everything runs on
  the event loop's thread: no hand-off, no lock, no wake-up bytes.
- :class:`FastClient` (paho 2.1/2.2 only; checked by cloud/tests/test_mqtt_fast_path.py) reads
  the socket in 64 KiB chunks and gives a QoS 0/1 PUBLISH without MQTT 5 properties (the usual
  case: Mosquitto adds none unless asked) straight to ``raw_publish``. Any other packet, a PUBLISH
  with properties or a topic that is not UTF-8, and QoS 2 take paho's own path. Everything the
  client sends (PUBACKs, pings, subscriptions) is paho's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import MQTTErrorCode

__all__ = ["FastClient", "RawPublish", "SocketWatch", "client_class"]

#: ``(topic, payload, mid, the PUBLISH fixed header byte: QoS, DUP and RETAIN)``
RawPublish = Callable[[str, bytes, int, int], None]
#: Bytes asked of the socket per read.
RECV_CHUNK = 65536
#: At most this many packets are parsed per readiness of the socket before the loop runs others.
READ_BURST = 200
#: How often paho's ``loop_misc`` runs (keepalive pings, a silent broker detected).
MISC_EVERY_S = 1.0
#: paho releases whose private ``_sock_recv``, ``_handle_publish`` and ``_in_packet`` FastClient was
#: checked against; with any other, the plain client is used (correct, slower).
FAST_PATH_PAHO = ("2.1.", "2.2.")


class FastClient(paho.Client):
    """paho's client with the cheaper receive path described in the module docstring."""

    raw_publish: RawPublish | None = None
    _rbuf: bytes = b""
    _rpos: int = 0

    def buffered(self) -> bool:
        """Received bytes not yet parsed (the socket will not report them readable again)."""
        return self._rpos < len(self._rbuf)

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            buf = super()._sock_recv(RECV_CHUNK)  # raises BlockingIOError when there is nothing
            if not buf:
                return buf  # the connection is closed
            pos = 0
        end = min(pos + bufsize, len(buf))
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    def _handle_publish(self) -> MQTTErrorCode:
        handler = self.raw_publish
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        packet = self._in_packet["packet"]
        end = 2 + ((packet[0] << 8) | packet[1]) if len(packet) >= 2 else 0
        if handler is None or qos == 2 or end <= 2 or end + 2 * (qos > 0) >= len(packet):
            return super()._handle_publish()
        try:
            topic = packet[2:end].decode()
        except UnicodeDecodeError:
            return super()._handle_publish()
        mid = 0
        if qos:
            mid = (packet[end] << 8) | packet[end + 1]
            end += 2
        if self._protocol == paho.MQTTv5:
            if packet[end] != 0:
                return super()._handle_publish()  # properties: paho decodes them
            end += 1
        handler(topic, bytes(packet[end:]), mid, header)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def client_class() -> type[paho.Client]:
    """FastClient with the paho releases it was checked against, else paho's own."""
    return FastClient if paho_version.startswith(FAST_PATH_PAHO) else paho.Client


class SocketWatch:
    """Drives one connected paho client from the event loop until :meth:`close`.

    :meth:`pause_reading` leaves what arrives in the socket (TCP flow control then stops the
    broker); :meth:`resume_reading` takes it up again, starting with what is already buffered.
    """

    def __init__(self, client: paho.Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self._loop = loop
        self._reading = False
        self._closed = False
        self._misc: asyncio.TimerHandle | None = None
        self._buffered = client.buffered if isinstance(client, FastClient) else _nothing

    def start(self) -> bool:
        """Watch the socket; False if the client has none (the connection is already gone)."""
        client = self.client
        sock = client.socket()
        if sock is None:
            return False
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._written
        client.on_socket_close = self._closing
        self.resume_reading()
        if client.want_write():
            self._loop.add_writer(sock, client.loop_write)
        self._misc = self._loop.call_later(MISC_EVERY_S, self._housekeeping)
        return True

    def close(self) -> None:
        """Stop watching and close the socket (idempotent)."""
        self._closed = True
        self._reading = False
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        sock = self.client.socket()
        if sock is not None:
            self._unwatch(sock)
            sock.close()

    @property
    def reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        sock = self.client.socket()
        if self._reading and sock is not None:
            self._reading = False
            self._loop.remove_reader(sock)

    def resume_reading(self) -> None:
        sock = self.client.socket()
        if self._reading or self._closed or sock is None:
            return
        self._reading = True
        self._loop.add_reader(sock, self._readable)
        if self._buffered():
            self._loop.call_soon(self._readable)

    def _readable(self) -> None:
        """Parse a burst of packets: while FastClient holds unparsed bytes (one packet per
        readiness with paho's own client). Stops when reading is paused or the connection ends."""
        client, buffered = self.client, self._buffered
        for _ in range(READ_BURST):
            if not self._reading or client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return  # paused, or the connection is lost (paho has called on_disconnect)
            if not buffered():
                return
        if self._reading and buffered():  # the socket will not say so: come back soon
            self._loop.call_soon(self._readable)

    def _housekeeping(self) -> None:
        self._misc = None
        if not self._closed and self.client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._misc = self._loop.call_later(MISC_EVERY_S, self._housekeeping)

    def _unwatch(self, sock: Any) -> None:
        if not self._loop.is_closed():
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)

    # paho's external-loop callbacks (called on the event loop: every paho call is made from it)

    def _want_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if not self._closed:
            self._loop.add_writer(sock, client.loop_write)

    def _written(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._loop.remove_writer(sock)

    def _closing(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._reading = False
        self._unwatch(sock)


def _nothing() -> bool:
    return False
