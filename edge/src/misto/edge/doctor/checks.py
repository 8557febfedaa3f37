"""The checks of ``misto-edge doctor`` that need the configuration: the broker (TCP, TLS, MQTT
CONNECT with the configured credentials), the clock, the serial ports the devices use, and the
state directory (where the buffer lives)."""

from __future__ import annotations

import os
import socket
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

from misto.edge.buffer.lock import holder_of
from misto.edge.device_config import SerialLine
from misto.edge.doctor.clock_check import check_clock
from misto.edge.doctor.result import Check, Outcome
from misto.edge.doctor.tls_check import check_tls
from misto.edge.settings import Settings


def check_tcp(host: str, port: int, *, timeout: float) -> Check:
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return Check("broker", Outcome.FAIL, f"cannot reach {host}:{port}: {exc.strerror or exc}")
    took = (time.monotonic() - started) * 1000
    return Check("broker", Outcome.OK, f"{host}:{port} reachable over TCP ({took:.0f} ms)")


def check_mqtt(settings: Settings, *, timeout: float) -> Check:
    from misto.edge.uplink.mqtt_probe import probe_connect

    broker = settings.broker
    who = f"as {broker.username!r}" if broker.username else "anonymously"
    result = probe_connect(broker, client_id=settings.client_id, timeout=timeout)
    if not result.accepted:
        return Check("mqtt", Outcome.FAIL, f"CONNECT {who} (MQTT {broker.protocol}): {result.detail}")
    return Check("mqtt", Outcome.OK, f"CONNECT {who} accepted (MQTT {broker.protocol}, {result.seconds * 1000:.0f} ms)")


def check_serial_ports(settings: Settings) -> list[Check]:
    ports: dict[str, list[str]] = {}
    for device in settings.devices:
        line = getattr(device, "serial", None)
        if isinstance(line, SerialLine):
            ports.setdefault(line.port, []).append(device.id)
    if not ports:
        return [Check("serial", Outcome.SKIP, "no serial devices configured")]
    return [_serial_port(port, users) for port, users in ports.items()]


def _serial_port(port: str, users: list[str]) -> Check:
    name = f"serial {port}"
    used_by = f"used by {', '.join(users)}"
    try:
        mode = os.stat(port).st_mode
    except FileNotFoundError:
        return Check(name, Outcome.FAIL, f"does not exist ({used_by}); is the adapter plugged in?")
    except OSError as exc:
        return Check(name, Outcome.FAIL, f"cannot inspect it: {exc.strerror}")
    if not stat.S_ISCHR(mode):
        return Check(name, Outcome.FAIL, f"is not a character device ({used_by})")
    if not os.access(port, os.R_OK | os.W_OK):
        return Check(name, Outcome.FAIL, f"no read/write permission for this user ({used_by}); group dialout?")
    return Check(name, Outcome.OK, f"present and accessible ({used_by})")


def check_state_dir(settings: Settings) -> Check:
    directory = settings.state_dir
    if settings.buffer.kind == "sqlite":
        holder = holder_of(settings.buffer_path.with_name(settings.buffer_path.name + ".lock"))
        if holder is not None:
            return Check("state dir", Outcome.OK, f"{settings.buffer_path} in use by the running agent (pid {holder})")
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check("state dir", Outcome.FAIL, f"{directory} is not writable by this user (buffer and state file)")
    if existing != directory:
        return Check("state dir", Outcome.WARN, f"{directory} does not exist yet; the agent will create it")
    return Check("state dir", Outcome.OK, f"{directory} is writable")


def run_checks(settings: Settings, *, timeout: float = 5.0, now: datetime | None = None) -> list[Check]:
    broker = settings.broker
    checks = [check_tcp(broker.host, broker.port, timeout=timeout)]
    if checks[0].outcome is Outcome.OK:
        checks += check_tls(broker, timeout=timeout)
        checks.append(check_mqtt(settings, timeout=timeout))
    else:
        checks.append(Check("mqtt", Outcome.SKIP, "broker not reachable"))
    checks += check_clock(now or datetime.now(UTC))
    checks += check_serial_ports(settings)
    checks.append(check_state_dir(settings))
    return checks


def config_check(path: Path, settings: Settings) -> Check:
    devices = len(settings.devices)
    return Check("config", Outcome.OK, f"{path}: valid ({devices} device(s), gateway {settings.gateway_id})")
