"""The servers of the ingest benchmark: Mosquitto (configured as Misto ships it), ``influxd``
(Debian's InfluxDB 1.x, v1 HTTP API) and ``misto-cloud serve`` as the ingester under test."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.edge.broker import BENCH_USER, Broker, free_port
from bench.edge.procs import Child

REPO = Path(__file__).resolve().parents[2]
INGESTER_ID = "bench-ingester"
HTTP_UNAVAILABLE = 503


@dataclass
class Ingester:
    """``misto-cloud serve`` with one store backend; its API answers on ``port``."""

    workdir: Path
    broker: Broker
    store_env: dict[str, str]
    port: int = 0
    child: Child | None = None
    token: str = ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
            self.token = secrets.token_hex(24)
        secret = self.workdir / "broker-password"
        secret.write_text(self.broker.passwords[BENCH_USER], encoding="utf-8")
        secret.chmod(0o600)
        env = {
            "PATH": "/usr/bin:/bin",
            "MISTO_BROKER__URL": f"mqtt://{self.broker.host}:{self.broker.port}",
            "MISTO_BROKER__USERNAME": BENCH_USER,
            "MISTO_BROKER__PASSWORD_FILE": str(secret),
            "MISTO_BROKER__CLIENT_ID": INGESTER_ID,
            "MISTO_API__PORT": str(self.port),
            "MISTO_API__OPERATOR_TOKEN": self.token,
            "MISTO_CONTROL__PATH": str(self.workdir / "misto-control.db"),
            "MISTO_LOG_LEVEL": "warning",
            **self.store_env,
        }
        self.child = Child(
            [str(REPO / ".venv/bin/misto-cloud"), "serve"], name="ingester", log_dir=self.workdir, env=env
        )
        self.child.wait_until(lambda: self.health(quiet=True) is not None, timeout=30.0, what="its API")
        self.child.wait_until(self.connected, timeout=30.0, what="a broker connection")

    def health(self, *, quiet: bool = False) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as response:
                result: dict[str, Any] = json.load(response)
                return result
        except urllib.error.HTTPError as exc:
            if exc.code == HTTP_UNAVAILABLE:  # a failing health still carries the counters
                failing: dict[str, Any] = json.load(exc)
                return failing
            raise
        except (urllib.error.URLError, OSError):
            if quiet:
                return None
            raise

    def connected(self) -> bool:
        health = self.health(quiet=True)
        return bool(health and health["ingester"]["connected"])

    def counters(self) -> dict[str, Any]:
        health = self.health()
        assert health is not None
        ingester: dict[str, Any] = health["ingester"]
        return ingester

    def latest(self, device: str) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/v1/readings/latest?device={device}")
        with urllib.request.urlopen(request, timeout=5) as response:
            rows: list[dict[str, Any]] = json.load(response)
            return rows

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None
