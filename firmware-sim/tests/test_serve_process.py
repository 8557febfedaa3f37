"""``misto-sim serve`` as a real process: read it over Modbus TCP, compare with its state
file, stop it with signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from pymodbus.client import AsyncModbusTcpClient

from misto.sim.devices import MODELS, RegisterTable, RegisterType, SimRegister, WordOrder
from misto.sim.encoding import scale_decimals
from tests.fixtures.net import free_port
from tests.fixtures.processes import ManagedProcess

HOST = "127.0.0.1"
SIM = [sys.executable, "-m", "misto.sim.cli"]
DT = AsyncModbusTcpClient.DATATYPE
TYPES = {
    RegisterType.UINT16: DT.UINT16,
    RegisterType.INT16: DT.INT16,
    RegisterType.UINT32: DT.UINT32,
    RegisterType.INT32: DT.INT32,
    RegisterType.FLOAT32: DT.FLOAT32,
}


def decode(reg: SimRegister, words: Sequence[int]) -> float:
    order: Literal["big", "little"] = "little" if reg.word_order is WordOrder.LITTLE else "big"
    raw = AsyncModbusTcpClient.convert_from_registers(words, TYPES[reg.type], word_order=order)
    assert isinstance(raw, int | float)
    return raw * reg.scale if reg.type is RegisterType.FLOAT32 else round(raw * reg.scale, scale_decimals(reg.scale))


def serving_lines(log_path: Path) -> list[str]:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.startswith("serving ")]


def start_sim(tmp_path: Path, name: str, devices: Sequence[str], *extra: str) -> ManagedProcess:
    """Start ``misto-sim serve``; ready once it has printed one "serving" line per device."""
    argv = [*SIM, "serve", *(a for d in devices for a in ("--device", d)), *extra]
    log_path = tmp_path / "logs" / f"{name}.log"
    return ManagedProcess.start(
        argv,
        name=name,
        log_dir=log_path.parent,
        ready=lambda: len(serving_lines(log_path)) == len(devices),
        ready_timeout=20,
    )


async def read_device(port: int, unit: int, model_name: str) -> dict[str, float]:
    model = MODELS[model_name]
    client = AsyncModbusTcpClient(HOST, port=port, timeout=3, retries=0)
    assert await client.connect()
    try:
        values = {}
        for r in model.registers:
            if r.table is RegisterTable.INPUT:
                response = await client.read_input_registers(r.address, count=r.words, device_id=unit)
            else:
                response = await client.read_holding_registers(r.address, count=r.words, device_id=unit)
            assert not response.isError(), (r.metric, response)
            values[r.metric] = decode(r, response.registers)
        return values
    finally:
        client.close()


async def test_served_registers_decode_to_the_state_file(tmp_path: Path) -> None:
    aq1_port, nm1_port = free_port(), free_port()
    state_file = tmp_path / "state.json"
    proc = start_sim(
        tmp_path,
        "sim",
        [f"aq1@{HOST}:{aq1_port}", f"nm1@{HOST}:{nm1_port}/3"],
        "--freeze",
        "--seed",
        "42",
        "--state-file",
        str(state_file),
    )
    log = proc.log_text()
    assert f'serving aq1 "Misto AQ-1 air-quality station" on {HOST}:{aq1_port} unit 1\n' in log
    assert f'serving nm1 "Misto NM-1 noise meter" on {HOST}:{nm1_port} unit 3\n' in log

    state: dict[str, Any] = json.loads(state_file.read_text())
    assert state["updated_at"].endswith("Z")
    devices = {(d["model"], d["port"], d["unit"]): d["values"] for d in state["devices"]}
    assert set(devices) == {("aq1", aq1_port, 1), ("nm1", nm1_port, 3)}
    assert await read_device(aq1_port, 1, "aq1") == devices["aq1", aq1_port, 1]
    assert await read_device(nm1_port, 3, "nm1") == devices["nm1", nm1_port, 3]

    client = AsyncModbusTcpClient(HOST, port=aq1_port, timeout=3, retries=0)
    assert await client.connect()
    try:
        response = await client.read_input_registers(100, count=1, device_id=1)
        assert response.isError()
        assert response.exception_code == 2  # illegal data address
    finally:
        client.close()

    assert proc.stop() == 0
    assert "Traceback" not in proc.log_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_it_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    proc = start_sim(tmp_path, "sim", [f"nm1@{HOST}:{port}"], "--seed", "1", "--update-interval", "0.1")
    proc.signal(sig)
    assert proc.popen.wait(timeout=10) == 0
    assert proc.stop() == 0
    assert "Traceback" not in proc.log_text()


def test_same_seed_and_start_time_give_the_same_values(tmp_path: Path) -> None:
    snapshots = []
    for run in range(2):
        state_file = tmp_path / f"state{run}.json"
        proc = start_sim(
            tmp_path,
            f"sim{run}",
            [f"aq1@{HOST}:0"],
            "--freeze",
            "--seed",
            "7",
            "--start",
            "2025-06-04T08:00:00+03:00",
            "--state-file",
            str(state_file),
        )
        assert proc.stop() == 0
        doc = json.loads(state_file.read_text())
        assert doc["updated_at"] == "2025-06-04T05:00:00.000Z"
        snapshots.append(doc["devices"][0]["values"])
    assert snapshots[0] == snapshots[1]


def test_a_port_in_use_exits_1_naming_it(tmp_path: Path) -> None:
    port = free_port()
    first = start_sim(tmp_path, "first", [f"aq1@{HOST}:{port}"], "--seed", "1")
    try:
        second = subprocess.run(
            [*SIM, "serve", "--device", f"nm1@{HOST}:{port}", "--seed", "1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert second.returncode == 1, second.stderr
        assert f"misto-sim: error: cannot listen on {HOST}:{port}: Address already in use" in second.stderr
        assert "serving" not in second.stdout
    finally:
        assert first.stop() == 0


def test_bad_device_spec_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SIM, "serve", "--device", "aq1@127.0.0.1:5020/999"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "misto-sim: error: --device 'aq1@127.0.0.1:5020/999': unit 999 is not in 1..247" in result.stderr


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "misto-sim"
    result = subprocess.run([str(script), "list"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("aq1  Misto AQ-1 air-quality station")
