"""``misto-cloud`` as a user runs it: check-config, and serve as a real process stopped by a signal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cloud.tests.support import Gateway, health, telemetry
from misto.cloud.cli import app
from misto.protocol import Ack, AckResult, Channel, ConfigUpdate, codec, topics
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import LOOPBACK, free_port
from tests.fixtures.processes import ManagedProcess

SAMPLE = Path(__file__).resolve().parent.parent / "config" / "misto-cloud.sample.yaml"
MISTO_CLOUD = [str(Path(sys.executable).with_name("misto-cloud"))]  # the console script users run


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MISTO_"):
            monkeypatch.delenv(name)


def get_json(url: str, *, token: str | None = None) -> Any:
    return send(url, "GET", token=token)[1]


def send(url: str, method: str, body: object = None, *, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, json.load(response)


def test_check_config_accepts_the_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    for name in ("broker-password", "gw-demo-password"):
        (tmp_path / "secrets" / name).write_text(f"{name}-a-real-one\n", encoding="utf-8")
    (tmp_path / "secrets" / "operator-token").write_text("0123456789abcdef0123\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check-config", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert f"{SAMPLE}: OK" in result.output
    assert "broker: mqtt://127.0.0.1:1883 as ingester" in result.output
    assert "a-real-one" not in result.output


def test_bad_config_exits_2_listing_every_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("broker:\n  url: tcp://x\napi:\n  port: -1\n  operator_token: changeme\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert "3 configuration error(s)" in result.stderr
    for key in ("broker.url:", "api.port:", "api.operator_token:"):
        assert key in result.stderr
    # The README shows this very output.
    readme = (SAMPLE.parent.parent / "README.md").read_text(encoding="utf-8")
    shown = readme.split("misto-cloud: 3 configuration error(s) in bad.yaml:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.strip() for line in shown.splitlines()] == [line.strip() for line in result.stderr.splitlines()[1:]]
    serve = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert serve.exit_code == 2
    assert "broker.url:" in serve.stderr


def render_page(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium (Debian's package)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is not installed: run `make setup` (Debian: apt-get install chromium)"
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    flags += [
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
    ]
    result = subprocess.run(
        [chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def wait_for_line(proc: ManagedProcess, text: str, deadline_s: float = 15.0) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        log = proc.log_text()
        if text in log:
            return log
        if not proc.alive():
            break
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not printed within {deadline_s}s:\n{proc.log_text()}")


def test_serve_with_the_embedded_broker_then_sigterm(tmp_path: Path) -> None:
    """The README's quick start: ``misto-cloud serve --embedded-broker``, a gateway publishes, the API shows it."""
    api_port, mqtt_port = free_port(), free_port()
    (tmp_path / "gw-demo-password").write_text("gw-demo-password-123\n", encoding="utf-8")
    token = "operator-token-for-the-serve-test"
    config = tmp_path / "misto-cloud.yaml"
    config.write_text(
        f"""
store: {{path: {tmp_path / "misto.db"}}}
api: {{port: {api_port}, operator_token: {token}}}
embedded_broker:
  port: {mqtt_port}
  users: [{{username: gw-demo, password_file: {tmp_path / "gw-demo-password"}}}]
""",
        encoding="utf-8",
    )
    proc = ManagedProcess.start(
        [*MISTO_CLOUD, "serve", "--config", str(config), "--embedded-broker"],
        name="misto-cloud",
        log_dir=tmp_path,
        ready_port=api_port,
    )
    try:
        log = wait_for_line(proc, "embedded MQTT broker on")
        assert f"public page http://127.0.0.1:{api_port}/" in log
        deadline = time.monotonic() + 10
        while not get_json(f"http://127.0.0.1:{api_port}/health")["ingester"]["connected"]:
            assert time.monotonic() < deadline, "the ingester did not subscribe"
            time.sleep(0.05)
        gw = Gateway(LOOPBACK, mqtt_port, "gw-demo", "gw-demo-password-123", v5=False)
        try:
            gw.send(telemetry("gw-demo", seq=1, at=datetime.now(UTC)))
            gw.publish(topics.build("gw-demo", Channel.HEALTH), codec.encode(health("gw-demo", at=datetime.now(UTC))))
            # Remote configuration through the running service: published retained, answered, shown.
            config_url = f"http://127.0.0.1:{api_port}/api/v1/gateways/gw-demo/config"
            status, body = send(config_url, "PUT", {"config": {"log_level": "debug"}}, token=token)
            assert (status, body["version"], body["state"]) == (202, 1, "pending")
            gw.subscribe(topics.build("gw-demo", Channel.CONFIG))
            deadline = time.monotonic() + 10
            while not gw.received():
                assert time.monotonic() < deadline, "the retained config did not reach the gateway"
                time.sleep(0.05)
            assert codec.decode(bytes(gw.received()[0].payload), ConfigUpdate).config == {"log_level": "debug"}
            ack = Ack(schema=1, gateway="gw-demo", ref="config:1", result=AckResult.OK, at=datetime.now(UTC))
            gw.publish(topics.build("gw-demo", Channel.ACK), codec.encode(ack))
            deadline = time.monotonic() + 10
            while get_json(config_url, token=token)["state"] != "applied":
                assert time.monotonic() < deadline, "the ack did not reach the API"
                time.sleep(0.05)
        finally:
            gw.close()
        assert (tmp_path / "misto-control.db").exists()
        deadline = time.monotonic() + 10
        devices: list[object] = []
        while time.monotonic() < deadline and not devices:
            devices = get_json(f"http://127.0.0.1:{api_port}/api/v1/devices")
            time.sleep(0.05)
        assert devices, "the reading did not reach the API"
        deadline = time.monotonic() + 10
        while not (gateways := get_json(f"http://127.0.0.1:{api_port}/api/v1/gateways"))[0]["health"]:
            assert time.monotonic() < deadline, "the gateway's health did not reach the API"
            time.sleep(0.05)
        assert [g["health"]["devices"] for g in gateways] == [{"ok": 2, "failing": 1, "starting": 0}]
        service_health = get_json(f"http://127.0.0.1:{api_port}/health")
        assert service_health["status"] == "ok"
        dom = render_page(f"http://127.0.0.1:{api_port}/", tmp_path / "chromium")
        table = dom.split("<table>", 1)[1].split("</table>", 1)[0]  # the page's one table, built by app.js
        for text in ('scope="rowgroup"', "aq-1", "gw-demo", "pm25", "12.5", "µg/m³", "ug/m3", "Temperature", "°C"):
            assert text in table, f"{text!r} not in the rendered table:\n{table}"
        proc.signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=15) == 0
        assert "misto-cloud: stopped" in proc.log_text()
    finally:
        proc.stop()


def test_serve_reports_a_busy_api_port(tmp_path: Path, mosquitto: BrokerInfo) -> None:
    busy = ManagedProcess.start(
        [sys.executable, "-m", "http.server", "--bind", LOOPBACK, str(port := free_port())],
        name="busy",
        log_dir=tmp_path,
        ready_port=port,
    )
    try:
        env = {
            "MISTO_BROKER__URL": mosquitto.url,
            "MISTO_BROKER__USERNAME": "ingester",
            "MISTO_BROKER__PASSWORD": mosquitto.users["ingester"],
            "MISTO_API__PORT": str(port),
            "MISTO_STORE__PATH": str(tmp_path / "misto.db"),
        }
        proc = ManagedProcess.start([*MISTO_CLOUD, "serve"], name="misto-cloud", log_dir=tmp_path, env=env)
        try:
            assert proc.popen.wait(timeout=15) == 1
            assert f"HTTP API could not start: cannot listen on 127.0.0.1:{port}" in proc.log_text()
        finally:
            proc.stop()
    finally:
        busy.stop()
