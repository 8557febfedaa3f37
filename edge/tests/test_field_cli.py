"""``misto-edge scan`` and ``misto-edge read`` against the real simulator on a pty bus and TCP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from misto.edge.cli import app
from tests.fixtures.misto_sim import SimProcess, start_simulator
from tests.fixtures.net import LOOPBACK, free_port

runner = CliRunner()


@pytest.fixture
def field_bus(tmp_path: Path) -> Iterator[tuple[SimProcess, Path]]:
    bus = tmp_path / "ttyBUS0"
    sim = start_simulator(
        tmp_path / "sim",
        [f"tc1@pty:{bus}/1", f"tb1@pty:{bus}/4", f"wb1@pty:{bus}/6"],
        faults=[f"wb1@pty:{bus}/6:crc"],
    )
    yield sim, bus
    sim.stop()


def test_scan_finds_the_units_on_a_bus(field_bus: tuple[SimProcess, Path]) -> None:
    _, bus = field_bus
    result = runner.invoke(app, ["scan", "--serial", str(bus), "--units", "1-8", "--timeout", "0.1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"scanning {bus} (9600 8N1): units 1-8, reading holding 0, 0.1 s per unit"
    answers = {int(line.split()[1]): line for line in lines if line.startswith("unit ")}
    assert sorted(answers) == [1, 4, 6]
    assert "exception 2 (illegal data address); the device is there" in answers[1]  # tc1 has no holding 0
    assert "answered: holding 0 = 0x41AC" in answers[4]  # the test bench's 21.5 as float32
    assert "garbled answer (CRC error)" in answers[6]
    assert lines[-1].startswith("found 3 device(s) among 8 unit id(s)")


def test_scan_json(field_bus: tuple[SimProcess, Path]) -> None:
    _, bus = field_bus
    result = runner.invoke(
        app, ["scan", "--serial", str(bus), "--units", "3,4", "--timeout", "0.1", "--register", "input:0", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["found"] == [4]
    assert doc["answers"] == [
        {
            "unit": 4,
            "answer": "data",
            "present": True,
            "values": [1234],
            "exception": None,
            "latency_s": pytest.approx(0.05, abs=0.05),
        }
    ]


def test_scan_tcp_tells_absent_units_behind_a_gateway_apart(tmp_path: Path) -> None:
    port = free_port()
    sim = start_simulator(tmp_path / "sim", [f"aq1@{LOOPBACK}:{port}/2"])
    try:
        result = runner.invoke(
            app, ["scan", "--host", LOOPBACK, "--port", str(port), "--units", "1-3", "--register", "input:0"]
        )
    finally:
        sim.stop()
    assert result.exit_code == 0, result.output
    answers = [line for line in result.stdout.splitlines() if line.startswith("unit ")]
    assert "no device (the gateway answered exception 11)" in answers[0]
    assert "answered: input 0 =" in answers[1]
    assert result.stdout.splitlines()[-1].startswith("found 1 device(s) among 3 unit id(s)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan"], "give either --serial PORT or --host HOST"),
        (["scan", "--host", "h", "--units", "0-3"], "unit ids are 1..247"),
        (["scan", "--host", "h", "--register", "coils:1"], "expected TABLE:ADDRESS"),
    ],
)
def test_scan_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_scan_of_a_missing_port_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", "--serial", str(tmp_path / "ttyUSB9"), "--units", "1"])
    assert result.exit_code == 1
    assert "ttyUSB9 does not exist" in result.output


def write_config(tmp_path: Path, bus: Path) -> Path:
    config = {
        "gateway_id": "gw-test",
        "broker": {"url": "mqtt://127.0.0.1"},
        "devices": [
            {"id": "tc-1", "driver": "modbus_rtu", "serial": {"port": str(bus)}, "unit_id": 1, "profile": "tc1"},
            {
                "id": "tb-1",
                "driver": "modbus_rtu",
                "serial": {"port": str(bus)},
                "unit_id": 4,
                "registers": [
                    {"metric": "temperature", "table": "input", "address": 1, "type": "int16", "scale": 0.01},
                    {"metric": "occupied", "subdevice": "c2", "table": "coil", "address": 2},
                    {"attribute": "model", "table": "holding", "address": 256, "type": "string", "count": 8},
                ],
            },
            {
                "id": "bin-1",
                "driver": "modbus_rtu",
                "serial": {"port": str(bus)},
                "unit_id": 6,
                "profile": "wb1",
                "timeout": 0.1,
                "retries": 0,
            },
        ],
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_read_prints_values_units_and_raw_registers(tmp_path: Path, field_bus: tuple[SimProcess, Path]) -> None:
    sim, bus = field_bus
    result = runner.invoke(app, ["read", str(write_config(tmp_path, bus)), "tc-1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"device tc-1 (modbus_rtu, unit 1 on {bus} (9600 8N1)): 5 of 5 values in ")
    assert lines[1].split() == ["name", "value", "unit", "table", "address", "raw"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    intensity = sim.values(0)["intensity"]
    assert rows["intensity"] == ["intensity", f"{intensity:.10g}", "1/h", "input", "0", f"{int(intensity):04X}"]
    assert rows["occupancy"][3:5] == ["input", "2-3"]
    assert len(rows["occupancy"]) == 7
    assert rows["model"][1:3] == ['"MISTO', 'TC-1"']


def test_read_json_with_subdevices_and_attributes(tmp_path: Path, field_bus: tuple[SimProcess, Path]) -> None:
    _, bus = field_bus
    result = runner.invoke(app, ["read", str(write_config(tmp_path, bus)), "tb-1", "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["ok"] is True
    values = {v["name"]: v for v in doc["values"]}
    assert values["temperature"] | {"raw": values["temperature"]["raw"]} == {
        "device": "tb-1",
        "name": "temperature",
        "kind": "reading",
        "value": -12.34,
        "unit": "Cel",
        "table": "input",
        "address": 1,
        "raw": [0xFB2E],
        "error": None,
    }
    assert values["c2/occupied"]["device"] == "tb-1.c2"
    assert values["c2/occupied"]["raw"] == [1]
    assert values["model"] == values["model"] | {"kind": "attribute", "value": "MISTO TB-1", "unit": None}
    assert doc["counters"]["responses"] == 3


def test_read_of_a_noisy_device_shows_what_failed(tmp_path: Path, field_bus: tuple[SimProcess, Path]) -> None:
    _, bus = field_bus
    result = runner.invoke(app, ["read", str(write_config(tmp_path, bus)), "bin-1"])
    assert result.exit_code == 1
    assert "0 of 7 values" in result.stdout
    assert "answer with a wrong CRC" in result.stdout


def test_read_names_an_unknown_device(tmp_path: Path) -> None:
    result = runner.invoke(app, ["read", str(write_config(tmp_path, tmp_path / "bus")), "nope"])
    assert result.exit_code == 2
    assert "no device 'nope'" in result.output
    assert "devices: tc-1, tb-1, bin-1" in result.output
