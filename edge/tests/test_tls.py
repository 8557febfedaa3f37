"""mqtts:// against a real Mosquitto with a TLS listener and a private CA made with openssl."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from misto.edge.agent import Agent
from misto.edge.settings import settings_from_data
from tests.fixtures.mosquitto import BrokerInfo, new_broker
from tests.fixtures.net import LOOPBACK

DEADLINE = 15.0


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> None:
    """ca.pem (a private CA) and server.crt/server.key for 127.0.0.1, signed by it."""
    folder.mkdir(parents=True)
    (folder / "san.ext").write_text(f"subjectAltName=IP:{LOOPBACK}\n", encoding="utf-8")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=misto-test-ca", cwd=folder)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", f"/CN={LOOPBACK}", cwd=folder)  # fmt: skip
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "1", "-extfile", "san.ext", cwd=folder)  # fmt: skip


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[BrokerInfo]:
    """The shared fixture's Mosquitto set-up, listening with TLS only."""
    pki = tmp_path / "pki"
    make_pki(pki)

    class TlsBroker(BrokerInfo):
        def config_text(self) -> str:
            listener = f"listener {self.port} {self.host}"
            tls = f"{listener}\ncafile {pki / 'ca.pem'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}"
            return super().config_text().replace(listener, tls)

    broker = new_broker(tmp_path / "tls-mosquitto", TlsBroker)
    try:
        yield broker
    finally:
        broker.stop()


async def until(condition: Callable[[], Any]) -> None:
    async with asyncio.timeout(DEADLINE):
        while not condition():  # noqa: ASYNC110 - set by the uplink's network thread
            await asyncio.sleep(0.02)


def config(broker: BrokerInfo, sim: Any, tls: dict[str, str] | None, state_dir: Path) -> dict[str, Any]:
    return {
        "gateway_id": "gw-test",
        "state_dir": str(state_dir),
        "broker": {
            "url": f"mqtts://{broker.host}:{broker.port}",
            "username": "gw-test",
            "password": broker.users["gw-test"],
            "reconnect_delay_min": 0.1,
            "reconnect_delay_max": 0.5,
            **({"tls": tls} if tls else {}),
        },
        "poll_interval": 0.2,
        "devices": [
            {"id": "nm-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": sim.ports["nm1"], "profile": "nm1"}
        ]
        if sim
        else [],
    }


@pytest.mark.parametrize("trusted", [True, False], ids=["private-ca", "system-cas"])
async def test_mqtts(
    trusted: bool, tls_broker: BrokerInfo, start_sim: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim = start_sim("nm1")
    tls = {"ca_file": str(tmp_path / "pki" / "ca.pem")} if trusted else None
    agent = Agent(settings_from_data(config(tls_broker, sim, tls, tmp_path), env={}))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        if trusted:
            await until(lambda: agent.buffer.stats().sent >= 3)  # acknowledged over TLS
        else:
            await until(lambda: agent.uplink.stats.connect_failures >= 2)
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE):
            await task
    if trusted:
        assert agent.uplink.stats.connect_failures == 0
    else:
        assert agent.uplink.stats.connects == 0
        assert agent.buffer.stats().sent == 0
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


@pytest.mark.parametrize("trusted", [True, False], ids=["private-ca", "system-cas"])
def test_doctor_checks_tls(trusted: bool, tls_broker: BrokerInfo, tmp_path: Path) -> None:
    """`misto-edge doctor` does the agent's own handshake: trusted with the private CA (and reports the
    certificate's remaining validity: 1 day, a warning), refused with the system's CAs."""
    from typer.testing import CliRunner

    from misto.edge.cli import app

    data = config(tls_broker, None, {"ca_file": str(tmp_path / "pki" / "ca.pem")} if trusted else None, tmp_path)
    data["devices"] = []
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["doctor", str(path), "--json", "--timeout", "3"])
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    if trusted:
        assert result.exit_code == 0, result.output
        assert checks["tls"]["outcome"] == "ok"
        assert "certificate and host name verified" in checks["tls"]["detail"]
        assert checks["tls server cert"]["outcome"] == "warn"  # the test PKI is valid for one day
        assert checks["mqtt"]["outcome"] == "ok"
    else:
        assert result.exit_code == 1
        assert checks["tls"]["outcome"] == "fail"
        assert "not trusted" in checks["tls"]["detail"]
        assert checks["mqtt"]["outcome"] == "fail"
