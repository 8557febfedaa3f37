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
    assert lines[1].split()[:7] == ["addr", "words", "name", "table", "type", "layout", "scale"]
    co = next(line for line in lines if " co " in line).split()
    assert co[:9] == ["6", "2", "co", "input", "(04)", "float32", "CDAB", "1", "mg/m3"]
    pm25 = next(line for line in lines if " pm25 " in line).split()
    assert pm25[:9] == ["0", "1", "pm25", "input", "(04)", "uint16", "AB", "0.1", "ug/m3"]


def test_describe_shows_bits_subdevices_set_points_and_text() -> None:
    result = runner.invoke(app, ["describe", "tb1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("tb1: Misto TB-1 Modbus test bench (Modbus TCP")
    rows = {line.split()[2]: line.split() for line in lines[2:]}
    assert rows["float32-badc/atmosphericPressure"][5:7] == ["float32", "BADC"]
    assert rows["float64-dcba/no2"][5:7] == ["float64", "HGFEDCBA"]
    assert rows["bit15/occupied"][5:8] == ["bit", "bit", "15"]
    assert rows["coil2/occupied"][3:5] == ["coil", "(01,"]
    assert rows["model"][-3:] == ["text", '"MISTO', 'TB-1"']


@pytest.mark.parametrize("name", sorted(MODELS))
def test_describe_json_is_the_register_map(name: str) -> None:
    result = runner.invoke(app, ["describe", name, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    model = MODELS[name]
    assert doc["id"] == name
    assert doc["title"] == model.title
    rows = [(r["name"], r["address"], r["type"], r["word_order"], r["scale"], r["unit"]) for r in doc["registers"]]
    assert rows == [(r.key, r.address, str(r.type), str(r.word_order), r.scale, r.unit) for r in model.registers]
    assert {r["function"] for r in doc["registers"]} == {r.table.function_code for r in model.registers}
    assert [t["text"] for t in doc["identity"]] == [t.text for t in model.identity]
    assert doc["transport"] == model.transport.value


def test_describe_unknown_model_exits_2_naming_it() -> None:
    result = runner.invoke(app, ["describe", "aq9"])
    assert result.exit_code == 2
    assert "MODEL 'aq9'" in result.output
    assert "known models: aq1, nm1, pb1, tb1, tc1, wb1" in result.output


def test_serve_with_bad_devices_exits_2_naming_each() -> None:
    result = runner.invoke(app, ["serve", "--device", "aq9@127.0.0.1:5020", "--device", "aq1@127.0.0.1"])
    assert result.exit_code == 2
    assert "--device 'aq9@127.0.0.1:5020': unknown model 'aq9'" in result.output
    assert "--device 'aq1@127.0.0.1': expected HOST:PORT for tcp, not '127.0.0.1'" in result.output


def test_serve_with_bad_faults_exits_2_naming_each() -> None:
    result = runner.invoke(
        app,
        [
            "serve",
            "--device",
            "aq1@127.0.0.1:0",
            "--fault",
            "aq1@127.0.0.1:0:melt",
            "--fault",
            "aq1@127.0.0.1:0:slow",
            "--fault",
            "aq1@127.0.0.1:0:dropout:q=1",
        ],
    )
    assert result.exit_code == 2
    assert "--fault 'aq1@127.0.0.1:0:melt': expected TARGET:KIND" in result.output
    assert "--fault 'aq1@127.0.0.1:0:slow': slow needs delay=SECONDS" in result.output
    assert "--fault 'aq1@127.0.0.1:0:dropout:q=1': dropout takes p=, after=, for=, every=; not 'q=1'" in result.output


def test_faults_must_name_a_device_and_fit_its_transport() -> None:
    result = runner.invoke(
        app,
        [
            "serve",
            "--device",
            "aq1@127.0.0.1:0",
            "--fault",
            "nm1@127.0.0.1:0:dropout",
            "--fault",
            "aq1@127.0.0.1:0:crc",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "no --device 'nm1@127.0.0.1:0' for fault dropout" in result.output
    assert "a crc fault needs an RTU transport" in result.output


def test_serve_needs_a_device() -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "--device" in result.output


def test_serve_refuses_a_bad_start_time() -> None:
    result = runner.invoke(app, ["serve", "--device", "aq1@127.0.0.1:0", "--start", "yesterday"])
    assert result.exit_code == 2
    assert "--start 'yesterday'" in result.output
