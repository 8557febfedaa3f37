"""The ``misto-sim`` commands that do not serve, run in-process; ``serve`` has its own
subprocess tests in test_serve_process.py."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from misto.sim.cli import app
from misto.sim.devices import MODELS

runner = CliRunner()


def test_list_shows_every_model_on_one_line() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(MODELS)
    assert lines[0].startswith("aq1  Misto AQ-1 air-quality station: Modbus TCP, input registers 0-11")
    assert lines[1].startswith("nm1  Misto NM-1 noise meter: Modbus TCP, holding registers 0-4")


def test_describe_prints_the_register_table() -> None:
    result = runner.invoke(app, ["describe", "aq1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("aq1: Misto AQ-1 air-quality station")
    assert lines[1].split()[:7] == ["addr", "words", "metric", "table", "type", "word", "order"]
    co = next(line for line in lines if " co " in line).split()
    assert co[:9] == ["6", "2", "co", "input", "(04)", "float32", "little", "1", "mg/m3"]
    pm25 = next(line for line in lines if " pm25 " in line).split()
    assert pm25[:9] == ["0", "1", "pm25", "input", "(04)", "uint16", "-", "0.1", "ug/m3"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_describe_json_is_the_register_map(name: str) -> None:
    result = runner.invoke(app, ["describe", name, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    model = MODELS[name]
    assert doc["id"] == name
    assert doc["title"] == model.title
    rows = [(r["metric"], r["address"], r["type"], r["word_order"], r["scale"], r["unit"]) for r in doc["registers"]]
    assert rows == [(r.metric, r.address, str(r.type), str(r.word_order), r.scale, r.unit) for r in model.registers]
    assert {r["function"] for r in doc["registers"]} == {4 if name == "aq1" else 3}


def test_describe_unknown_model_exits_2_naming_it() -> None:
    result = runner.invoke(app, ["describe", "aq9"])
    assert result.exit_code == 2
    assert "MODEL 'aq9'" in result.output
    assert "known models: aq1, nm1" in result.output


def test_serve_with_bad_devices_exits_2_naming_each() -> None:
    result = runner.invoke(app, ["serve", "--device", "aq9@127.0.0.1:5020", "--device", "aq1@127.0.0.1"])
    assert result.exit_code == 2
    assert "--device 'aq9@127.0.0.1:5020': unknown model 'aq9'" in result.output
    assert "--device 'aq1@127.0.0.1': expected MODEL@HOST:PORT[/UNIT]" in result.output


def test_serve_needs_a_device() -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "--device" in result.output


def test_serve_refuses_a_bad_start_time() -> None:
    result = runner.invoke(app, ["serve", "--device", "aq1@127.0.0.1:0", "--start", "yesterday"])
    assert result.exit_code == 2
    assert "--start 'yesterday'" in result.output
