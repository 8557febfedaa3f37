"""Serial devices: the wire formats byte for byte, faults, and ``misto-sim serial`` as a real
process read through its pseudo-terminals and driven through its control endpoint."""

from __future__ import annotations

import json
import os
import random
import re
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from misto.protocol.vocabulary import METRICS
from misto.sim.errors import SpecError
from misto.sim.serial_devices import SERIAL_MODELS, parse_serial_spec, wire
from misto.sim.serial_devices.faults import FaultKind, Faults
from misto.sim.signals import KYIV, Moment
from tests.fixtures.net import LOOPBACK, free_port, port_open
from tests.fixtures.processes import ManagedProcess

SIM = [sys.executable, "-m", "misto.sim.cli"]


def test_sds011_frame_byte_for_byte() -> None:
    frame = wire.sds011_frame({"pm25": 12.3, "pm10": 456.7}, sensor_id=0xA1B2)
    assert frame == bytes([0xAA, 0xC0, 123, 0, 0xD7, 0x11, 0xB2, 0xA1, (123 + 0xD7 + 0x11 + 0xB2 + 0xA1) % 256, 0xAB])
    corrupt = wire.sds011_corrupt(frame)
    assert corrupt[:8] == frame[:8]
    assert corrupt[9] == 0xAB
    assert corrupt[8] == (frame[8] + 1) % 256


def test_noise_line_and_its_faults() -> None:
    line = wire.noise_line({"LAeq": 63.44, "LAmax": 71.0})
    assert line == b"LAeq=63.4 LAmax=71.0 dB(A)\r\n"
    assert wire.noise_corrupt(line) == b"LAeq:63.4 LAmax=71.0 dB(A)\r\n"
    for keep in (0, 2, 10, 100):
        cut = wire.truncated(line, keep)
        assert line.startswith(cut)
        assert 1 <= len(cut) < len(line) - 2
        assert b"\n" not in cut
    assert 0xAA not in wire.GARBAGE_BYTES
    assert not any(b < 0x80 for b in wire.GARBAGE_BYTES)


def test_models_follow_the_vocabulary_and_the_day() -> None:
    for model in SERIAL_MODELS.values():
        for m in model.metrics:
            assert METRICS[m.metric].unit == m.unit
    pm25 = SERIAL_MODELS["sds011"].metrics[0].signal
    rush, night = (Moment.of(datetime(2025, 6, 3, h, tzinfo=KYIV)) for h in (8, 3))
    assert pm25.value(rush, {}, 0.0) > pm25.value(night, {}, 0.0) + 5  # the same daily pattern as the AQ-1


def test_faults_in_order_then_at_random() -> None:
    faults = Faults(random.Random(1), {FaultKind.GARBAGE: 0.5})
    faults.queue(FaultKind.CORRUPT, 2)
    faults.queue(FaultKind.TRUNCATE, 1)
    assert [faults.next(0.0) for _ in range(3)] == [FaultKind.CORRUPT, FaultKind.CORRUPT, FaultKind.TRUNCATE]
    faults.silence(2.0, now=10.0)
    assert faults.next(11.9) is FaultKind.SILENCE
    drawn = [faults.next(12.0 + k) for k in range(200)]
    assert 60 < drawn.count(FaultKind.GARBAGE) < 140
    assert set(drawn) == {None, FaultKind.GARBAGE}
    garbage = faults.garbage()
    assert 1 <= len(garbage) <= 8
    assert faults.stats.garbage_bytes == len(garbage)
    with pytest.raises(ValueError, match=r"rate of garbage must be in 0\.\.1"):
        Faults(random.Random(1), {FaultKind.GARBAGE: 2.0})
    with pytest.raises(ValueError, match="silence must be"):
        faults.silence(-1, now=0)


def test_specs() -> None:
    spec = parse_serial_spec("sds011@/tmp/misto/ttyPM")
    assert (spec.model, str(spec.path), str(spec)) == ("sds011", "/tmp/misto/ttyPM", "sds011@/tmp/misto/ttyPM")
    with pytest.raises(SpecError, match="unknown serial model 'aq1'; known: nm2, sds011"):
        parse_serial_spec("aq1@/tmp/x")
    with pytest.raises(SpecError, match="expected MODEL@PATH"):
        parse_serial_spec("sds011")


# ---------------------------------------------------------------------------------------------
# The process
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def serial_process(tmp_path: Path) -> Iterator[tuple[ManagedProcess, int, Path, Path]]:
    control = free_port()
    pm, noise = tmp_path / "ttyPM", tmp_path / "ttyNoise"
    argv = [*SIM, "serial", "--device", f"sds011@{pm}", "--device", f"nm2@{noise}", "--seed", "3", "--freeze"]
    argv += ["--control", f"{LOOPBACK}:{control}", "--period", "0.2", "--state-file", str(tmp_path / "state.json")]
    process = ManagedProcess.start(
        argv,
        name="serial-sim",
        log_dir=tmp_path,
        ready=lambda: pm.is_symlink() and noise.is_symlink() and port_open(LOOPBACK, control),
        ready_timeout=20,
    )
    yield process, control, pm, noise
    assert process.stop() == 0
    assert not pm.exists()
    assert not noise.exists()  # the links go with the process


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=5) as answer:
        return json.load(answer)


def post(port: int, path: str, body: Any) -> Any:
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}", data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)


def read_bytes(path: Path, until: bytes, deadline_s: float = 10.0) -> bytes:
    """Bytes from the terminal at ``path`` until ``until`` has been seen twice."""
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    data = b""
    try:
        deadline = time.monotonic() + deadline_s
        while data.count(until) < 2:
            assert time.monotonic() < deadline, f"only {data!r} within {deadline_s}s"
            if select.select([fd], [], [], 0.1)[0]:
                data += os.read(fd, 1024)
    finally:
        os.close(fd)
    return data


def test_the_terminals_carry_exactly_the_values_in_the_state(serial_process: Any) -> None:
    _, control, pm, noise = serial_process
    devices = {d["model"]: d for d in get(control, "/state")["devices"]}
    sds = devices["sds011"]
    frame = wire.sds011_frame(sds["values"], sds["sensor_id"])  # frozen: every frame is this one
    assert frame in read_bytes(pm, frame)
    line = wire.noise_line(devices["nm2"]["values"])
    assert line in read_bytes(noise, line)
    assert os.path.realpath(pm) == sds["tty"]
    written = json.loads((pm.parent / "state.json").read_text(encoding="utf-8"))
    assert [d["values"] for d in written["devices"]] == [sds["values"], devices["nm2"]["values"]]


def test_control_endpoint_queues_faults_and_refuses_nonsense(serial_process: Any) -> None:
    _, control, _, _ = serial_process
    state = post(control, "/devices/0/faults", {"garbage": 2, "corrupt": 1, "silence": 0.5})
    assert state["model"] == "sds011"
    assert state["pending_faults"] == {"garbage": 2.0, "corrupt": 1.0}
    assert state["silent_for"] > 0
    deadline = time.monotonic() + 10
    while (state := get(control, "/state")["devices"][0])["pending_faults"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["faults"]["garbage_events"] == 2
    assert state["faults"]["corrupted"] == 1
    assert state["faults"]["silent_messages"] >= 1
    for path, body, status, message in [
        ("/devices/5/faults", {}, 404, "devices are 0..1"),
        ("/devices/0/faults", {"smoke": 1}, 400, "unknown fault(s) ['smoke']"),
        ("/devices/0/faults", {"garbage": -1}, 400, "garbage: must be a whole number"),
        ("/devices/0/faults", [1], 400, "must be a JSON object"),
        ("/nowhere", {}, 404, "routes:"),
    ]:
        with pytest.raises(urllib.error.HTTPError) as caught:
            post(control, path, body)
        assert caught.value.code == status
        assert message in json.load(caught.value)["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "aq1@/tmp/x"], "unknown serial model 'aq1'"),
        (["--device", "sds011"], "expected MODEL@PATH"),
        (["--device", "sds011@/tmp/x", "--fault-rate", "smoke=0.1"], "--fault-rate 'smoke=0.1'"),
        (["--device", "sds011@/tmp/x", "--control", "nowhere"], "--control 'nowhere': expected HOST:PORT"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run([*SIM, "serial", *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_path_taken_by_a_file_is_not_replaced(tmp_path: Path) -> None:
    taken = tmp_path / "ttyPM"
    taken.write_text("precious", encoding="utf-8")
    result = subprocess.run(
        [*SIM, "serial", "--device", f"sds011@{taken}"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 1
    assert "exists and is not a symlink" in result.stderr
    assert taken.read_text(encoding="utf-8") == "precious"


def test_readme_example_runs(tmp_path: Path) -> None:
    """The README's `misto-sim serial` session, with its paths and port moved to this test's own."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    session = re.search(r"```console\n\$ (misto-sim serial [^\n]+)\n(.*?)```", readme, flags=re.DOTALL)
    assert session is not None
    port = str(free_port())
    command = session[1].replace("/tmp/misto", str(tmp_path)).replace("8090", port)
    expected = session[2].replace("/tmp/misto", str(tmp_path)).replace("8090", port).splitlines()
    log = tmp_path / "readme-serial.log"
    process = ManagedProcess.start(
        [*SIM, *command.split()[1:]],
        name="readme-serial",
        log_dir=tmp_path,
        ready=lambda: log.exists() and len(log.read_text(encoding="utf-8").splitlines()) >= len(expected),
        ready_timeout=20,
    )
    try:
        printed = [line for line in process.log_text().splitlines() if not line.startswith("misto-sim: seed")]
    finally:
        assert process.stop() == 0
    assert [re.sub(r"/dev/pts/\d+", "/dev/pts/N", line) for line in printed] == [
        re.sub(r"/dev/pts/\d+", "/dev/pts/N", line) for line in expected
    ]
