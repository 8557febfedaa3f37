"""The technician's CLI, including the commands the README shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from typer.testing import CliRunner

from misto.edge.cli import app

SAMPLE = Path(__file__).parents[1] / "config" / "gateway.sample.yaml"
CASES = Path(__file__).parent / "cases"
runner = CliRunner()


def test_console_script_is_registered() -> None:
    (script,) = entry_points(group="console_scripts", name="misto-edge")
    assert script.value == "misto.edge.cli:main"


def test_validate_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTO_BROKER_PASSWORD", "from-the-environment")
    result = runner.invoke(app, ["validate", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "config OK: 10 devices, 45 registers\n"


def test_validate_ok_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTO_BROKER_PASSWORD", "from-the-environment")
    result = runner.invoke(app, ["validate", "--json", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "file": str(SAMPLE), "devices": 10, "registers": 45}


def test_validate_reports_every_error_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTO_BROKER_PASSWORD", raising=False)
    config = CASES / "several_errors" / "config.yaml"
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 2
    expected = (CASES / "several_errors" / "expected_error.txt").read_text(encoding="utf-8").splitlines()
    lines = result.stderr.splitlines()
    assert lines[0] == f"config INVALID: {len(expected)} error(s)"
    assert lines[1:] == [line.replace("config.yaml:", f"{config}:", 1) for line in expected]
    assert result.stdout == ""


def test_validate_json_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTO_BROKER_PASSWORD", raising=False)
    config = CASES / "duplicate_device_ids" / "config.yaml"
    result = runner.invoke(app, ["validate", "--json", str(config)])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "file": str(config),
        "errors": [
            {
                "path": "devices[2].id",
                "message": "duplicate device id 'aq-1' (also devices[0])",
                "line": 6,
                "column": 10,
            }
        ],
    }


def test_run_refuses_a_bad_config() -> None:
    result = runner.invoke(app, ["run", str(CASES / "yaml_syntax_error" / "config.yaml")])
    assert result.exit_code == 2
    assert "invalid YAML: mapping values are not allowed here" in result.stderr


def test_readme_validate_command() -> None:
    """README: `MISTO_BROKER_PASSWORD=... misto-edge validate edge/config/gateway.sample.yaml`."""
    env = {**os.environ, "MISTO_BROKER_PASSWORD": "from-the-environment"}
    result = subprocess.run(
        [sys.executable, "-m", "misto.edge.cli", "validate", "edge/config/gateway.sample.yaml"],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "config OK: 10 devices, 45 registers\n"), result.stderr


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("misto-edge ")


def test_readme_shows_the_sample_config_verbatim() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"```yaml\n{SAMPLE.read_text(encoding='utf-8')}```" in readme
