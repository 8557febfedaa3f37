"""`misto-edge doctor` against a real Mosquitto: each check passes for a good set-up and fails, saying
why, for a bad one; the exit code follows."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from misto.edge.buffer.sqlite import SqliteBuffer
from misto.edge.cli import app
from misto.edge.doctor.clock_check import check_clock
from misto.edge.doctor.result import Outcome
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import LOOPBACK, free_port

runner = CliRunner()


def write(tmp_path: Path, broker_url: str, password: str, **extra: Any) -> Path:
    config = {
        "gateway_id": "gw-test",
        "state_dir": str(tmp_path / "state"),
        "broker": {"url": broker_url, "username": "gw-test", "password": password},
        "devices": [],
        **extra,
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def doctor(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["doctor", str(config), "--timeout", "3", *args])
    return result.exit_code, result.output


def lines_of(output: str) -> dict[str, str]:
    """check name -> its line (the mark and the detail)."""
    found = {}
    for line in output.splitlines():
        if line[:1] in "✔✘⚠-" and len(line) > 2:
            name = line[2:].split("  ")[0].strip()
            found[name] = line
    return found


def test_a_good_gateway_passes(mosquitto: BrokerInfo, tmp_path: Path) -> None:
    code, output = doctor(write(tmp_path, mosquitto.url, mosquitto.users["gw-test"]))
    checks = lines_of(output)
    assert code == 0, output
    assert checks["config"].startswith("✔")
    assert checks["broker"].startswith("✔")
    assert f"{LOOPBACK}:{mosquitto.port} reachable" in checks["broker"]
    assert checks["tls"].startswith("-")
    assert "not used (mqtt://)" in checks["tls"]
    assert checks["mqtt"].startswith("✔")
    assert "CONNECT as 'gw-test' accepted (MQTT 5" in checks["mqtt"]
    assert checks["clock"].startswith("✔")
    assert checks["serial"].startswith("-")
    assert checks["state dir"][0] in "✔⚠"
    assert output.rstrip().splitlines()[-1].startswith("all checks passed")


def test_wrong_password_fails_the_mqtt_check(mosquitto: BrokerInfo, tmp_path: Path) -> None:
    code, output = doctor(write(tmp_path, mosquitto.url, "not-the-password"))
    assert code == 1
    mqtt = lines_of(output)["mqtt"]
    assert mqtt.startswith("✘")
    assert "broker refused the connection: Not authorized" in mqtt or "Bad user name or password" in mqtt
    assert "1 check(s) failed" in output


def test_unreachable_broker(tmp_path: Path) -> None:
    code, output = doctor(write(tmp_path, f"mqtt://{LOOPBACK}:{free_port()}", "whatever-secret"), "--json")
    assert code == 1
    report = json.loads(output)
    assert report["ok"] is False
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["broker"]["outcome"] == "fail"
    assert "cannot reach" in checks["broker"]["detail"]
    assert checks["mqtt"]["outcome"] == "skip"


def test_serial_ports_of_the_config(mosquitto: BrokerInfo, tmp_path: Path) -> None:
    controller, device = os.openpty()
    try:
        port = os.ttyname(device)
        line = {"driver": "modbus_rtu", "profile": "aq1"}
        devices = [
            {"id": "aq-1", "serial": {"port": port}, **line},
            {"id": "aq-2", "unit_id": 2, "serial": {"port": port}, **line},
            {"id": "aq-3", "serial": {"port": "/dev/ttyMISSING9"}, **line},
        ]
        code, output = doctor(write(tmp_path, mosquitto.url, mosquitto.users["gw-test"], devices=devices))
    finally:
        os.close(controller)
        os.close(device)
    checks = lines_of(output)
    assert code == 1
    assert checks[f"serial {port}"].startswith("✔")
    assert "used by aq-1, aq-2" in checks[f"serial {port}"]
    assert checks["serial /dev/ttyMISSING9"].startswith("✘")
    assert "does not exist (used by aq-3)" in checks["serial /dev/ttyMISSING9"]


async def test_state_dir_in_use_by_a_running_agent(mosquitto: BrokerInfo, tmp_path: Path) -> None:
    config = write(tmp_path, mosquitto.url, mosquitto.users["gw-test"])
    buffer = SqliteBuffer(tmp_path / "state" / "buffer.db", max_messages=10)
    await buffer.open()
    try:
        code, output = doctor(config)
    finally:
        await buffer.close()
    assert code == 0, output
    assert f"in use by the running agent (pid {os.getpid()})" in lines_of(output)["state dir"]


def test_invalid_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("gateway_id: GW!\nbroker: {url: 'http://x'}\n", encoding="utf-8")
    code, output = doctor(path)
    assert code == 2
    assert "✘ config" in output
    assert "broker.url: must start with mqtt://" in output
    code, output = doctor(path, "--json")
    assert code == 2
    assert json.loads(output)["ok"] is False


def completed(code: int, out: str, err: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], code, out, err)


@pytest.mark.parametrize(
    ("answer", "outcome", "says"),
    [
        (completed(0, "yes\n"), Outcome.OK, "synchronised with NTP"),
        (completed(0, "no\n"), Outcome.FAIL, "not synchronised"),
        (
            completed(1, "", "System has not been booted with systemd\n"),
            Outcome.WARN,
            "cannot tell: timedatectl: System",
        ),
    ],
)
def test_clock_sync(answer: subprocess.CompletedProcess[str], outcome: Outcome, says: str) -> None:
    seen: list[list[str]] = []

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return answer

    clock, sync = check_clock(datetime(2026, 1, 1, tzinfo=UTC), run=run, which=lambda name: f"/usr/bin/{name}")
    assert clock.outcome is Outcome.OK
    assert (sync.outcome, says in sync.detail) == (outcome, True)
    assert seen == [["/usr/bin/timedatectl", "show", "--property=NTPSynchronized", "--value"]]


def test_clock_in_1970_and_no_timedatectl() -> None:
    clock, sync = check_clock(datetime(1970, 1, 1, 0, 3, tzinfo=UTC), which=lambda name: None)
    assert clock.outcome is Outcome.FAIL
    assert "not set" in clock.detail
    assert sync.outcome is Outcome.WARN
