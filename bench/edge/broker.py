"""A private Mosquitto for the bench: loopback, a free port, a temp dir, passwords and an ACL.

Accounts:

* ``bench``: the measuring subscriber (and ThingsBoard's session-limits responder); reads and
  writes ``misto/#`` and ``v1/#``.
* the Misto agent's gateway id: writes its own ``misto/v1/<id>/...`` channels, as Misto ships it.
* ``tb-gateway``: the ThingsBoard IoT Gateway. It may write anything under ``v1/``, but read only
  RPC *responses*: on a plain broker it would otherwise receive its own attribute and RPC publishes
  back and take them as remote configuration (thousands of reloads).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.edge.procs import Child

LOOPBACK = "127.0.0.1"
BENCH_USER = "bench"
TB_USER = "tb-gateway"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: all are held open together while the OS picks them."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError(f"{name} is not installed (Debian: apt-get install mosquitto)")
    return found


def _acl(misto_gateway: str) -> str:
    base = f"misto/v1/{misto_gateway}"
    return (
        f"user {BENCH_USER}\ntopic readwrite misto/#\ntopic readwrite v1/#\n\n"
        f"user {misto_gateway}\n"
        + "".join(f"topic write {base}/{ch}\n" for ch in ("telemetry", "status", "health", "ack"))
        + "".join(f"topic read {base}/{ch}\n" for ch in ("config", "cmd"))
        + f"\nuser {TB_USER}\ntopic write v1/#\ntopic read v1/devices/me/rpc/response/+\n"
    )


@dataclass
class Broker:
    workdir: Path
    misto_gateway: str
    port: int = field(default_factory=free_port)
    passwords: dict[str, str] = field(default_factory=dict)
    child: Child | None = None

    @property
    def host(self) -> str:
        return LOOPBACK

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o700)
        passwd = self.workdir / "passwd"
        passwd.touch(mode=0o600)
        for user in (BENCH_USER, self.misto_gateway, TB_USER):
            self.passwords[user] = secrets.token_urlsafe(16)
            subprocess.run(
                [find_binary("mosquitto_passwd"), "-b", str(passwd), user, self.passwords[user]],
                check=True,
                capture_output=True,
            )
        acl = self.workdir / "acl"
        acl.write_text(_acl(self.misto_gateway), encoding="utf-8")
        lines = [
            f"listener {self.port} {LOOPBACK}",
            "allow_anonymous false",
            f"password_file {passwd}",
            f"acl_file {acl}",
            "persistence false",
            "max_queued_messages 0",  # as Misto ships it: never drop a slow subscriber's QoS 1 messages
            "max_queued_bytes 268435456",
            "max_inflight_messages 100",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise Mosquitto drops to 'mosquitto', who cannot read the temp dir
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.child = Child([find_binary("mosquitto"), "-c", str(conf)], name="mosquitto", log_dir=self.workdir)
        self.child.wait_until(lambda: port_open(self.port), timeout=15.0, what="listening port")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
