"""TLS for the MQTT uplink: an SSL context from the broker settings."""

from __future__ import annotations

import ssl

from misto.edge.errors import UplinkError
from misto.edge.settings import BrokerSettings


def tls_context(broker: BrokerSettings) -> ssl.SSLContext:
    """Verifies the broker against ``tls.ca_file`` (or the system's CAs) and its host name; presents a
    client certificate when ``certfile`` and ``keyfile`` are set. Bad files raise :class:`UplinkError`."""
    tls = broker.tls
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls and tls.ca_file else None)
        if tls and tls.certfile and tls.keyfile:
            context.load_cert_chain(str(tls.certfile), str(tls.keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise UplinkError(f"cannot set up TLS for {broker.url}: {exc}") from exc
    context.sslsocket_class = _ClosingSSLSocket
    return context


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho does not close the socket when the TLS handshake fails (e.g. an untrusted certificate): this
    one closes itself, so failed attempts do not leak a file descriptor each until garbage collection."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise
