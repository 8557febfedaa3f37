"""The broker's TLS as the agent will see it: a handshake with the agent's own SSL context (its CA
file, its client certificate, host name checking), and how long the certificates stay valid."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

from misto.edge.doctor.result import Check, Outcome
from misto.edge.errors import UplinkError
from misto.edge.settings import BrokerSettings
from misto.edge.uplink.tls import tls_context

EXPIRY_WARNING_DAYS = 30


def _expiry(name: str, not_after: str, now: float) -> Check:
    days = (ssl.cert_time_to_seconds(not_after) - now) / 86400
    if days < 0:
        return Check(name, Outcome.FAIL, f"expired {-days:.0f} day(s) ago ({not_after})")
    outcome = Outcome.WARN if days < EXPIRY_WARNING_DAYS else Outcome.OK
    return Check(name, outcome, f"valid for {days:.0f} more day(s) (until {not_after})")


def check_tls(broker: BrokerSettings, *, timeout: float) -> list[Check]:
    if not broker.use_tls:
        return [Check("tls", Outcome.SKIP, f"not used ({broker.scheme}://)")]
    try:
        context = tls_context(broker)
    except UplinkError as exc:
        return [Check("tls", Outcome.FAIL, str(exc))]
    try:
        with (
            socket.create_connection((broker.host, broker.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=broker.host) as tls,
        ):
            cert = tls.getpeercert() or {}
            version = tls.version()
    except ssl.SSLCertVerificationError as exc:
        return [Check("tls", Outcome.FAIL, f"the broker's certificate is not trusted: {exc.verify_message}")]
    except (OSError, ssl.SSLError) as exc:
        return [Check("tls", Outcome.FAIL, f"handshake failed: {exc}")]
    names = [item for rdn in cert.get("subject", ()) for item in rdn if isinstance(item, tuple)]
    subject = dict(names).get("commonName", "?")
    checks = [Check("tls", Outcome.OK, f"{version} handshake with {subject!r}, certificate and host name verified")]
    now = time.time()
    if isinstance(not_after := cert.get("notAfter"), str):
        checks.append(_expiry("tls server cert", not_after, now))
    if broker.tls and broker.tls.certfile:
        checks.append(_client_certificate(broker.tls.certfile, now))
    return checks


def _client_certificate(path: Path, now: float) -> Check:
    # The standard library decodes a PEM file only through this helper (used by its own tests).
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
    if decode is None:
        return Check("tls client cert", Outcome.SKIP, "cannot read certificates with this Python")
    try:
        not_after = decode(str(path))["notAfter"]
    except (OSError, ssl.SSLError, KeyError) as exc:
        return Check("tls client cert", Outcome.FAIL, f"cannot read {path}: {exc}")
    return _expiry("tls client cert", not_after, now)
