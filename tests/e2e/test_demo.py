"""The README's first command, run as a new user would: live readings from every simulated
device at the API within 30 seconds, then everything stops cleanly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def run_demo(run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [str(ROOT / "scripts" / "demo"), "--until-live", "--deadline", "30"]
    argv += ["--run-dir", str(run_dir), "--api-port", str(free_port()), *extra]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_demo_command_shows_live_readings(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    result = run_demo(run_dir)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "live readings from 2 devices" in out
    assert "web page      http://127.0.0.1:" in out
    # Secrets are generated per run, readable by the owner only, never the same twice.
    token = run_dir / "operator.token"
    assert token.stat().st_mode & 0o077 == 0
    assert len(token.read_text().strip()) >= 24


def test_demo_with_an_existing_broker_uses_it_for_every_part(tmp_path: Path, mosquitto: BrokerInfo) -> None:
    password_file = tmp_path / "admin.password"
    password_file.write_text(mosquitto.users["admin"] + "\n")
    result = run_demo(
        tmp_path / "demo", "--broker", mosquitto.url, "--username", "admin", "--password-file", str(password_file)
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert f"broker        {mosquitto.url}" in out
    assert "embedded MQTT broker" not in out
    # The broker saw both the agent and the ingester connect as 'admin'.
    log = mosquitto.log_path.read_text()
    assert "as gw-demo-001" in log
    assert "misto-cloud-ingester" in log
