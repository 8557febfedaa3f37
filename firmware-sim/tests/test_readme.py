"""The README's tables, commands and code are the real thing: they are run or regenerated here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from misto.sim.describe import markdown_table
from misto.sim.devices import MODELS
from tests.fixtures.net import free_port
from tests.fixtures.processes import ManagedProcess

README = Path(__file__).resolve().parents[1] / "README.md"
SIM = [sys.executable, "-m", "misto.sim.cli"]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def console_sessions() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ``$ misto-sim ...`` in console blocks."""
    sessions: list[tuple[str, list[str]]] = []
    for block in blocks("console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                sessions.append((line[2:], []))
            else:
                sessions[-1][1].append(line)
    return sessions


@pytest.mark.parametrize("name", sorted(MODELS))
def test_register_tables_are_the_models(name: str) -> None:
    assert markdown_table(MODELS[name]) in README.read_text(encoding="utf-8"), (
        f"README's {name} table is stale: paste `misto-sim describe {name} --markdown`"
    )


def test_list_output_is_current() -> None:
    command, expected = next((c, out) for c, out in console_sessions() if c == "misto-sim list")
    result = subprocess.run([*SIM, *command.split()[1:]], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_serve_example_runs(tmp_path: Path) -> None:
    command, expected = next((c, out) for c, out in console_sessions() if c.startswith("misto-sim serve"))
    ports = {"5020": str(free_port()), "5021": str(free_port())}
    state_file = tmp_path / "state.json"
    argv = [*SIM, *command.split()[1:]]
    argv = [re.sub(r":(5020|5021)$", lambda m: ":" + ports[m[1]], a) for a in argv]
    argv = [str(state_file) if a == "/tmp/misto-sim-state.json" else a for a in argv]
    expected = [re.sub(r":(5020|5021) ", lambda m: ":" + ports[m[1]] + " ", line) for line in expected]
    log_path = tmp_path / "logs" / "readme-sim.log"

    def ready() -> bool:
        return log_path.exists() and log_path.read_text().count("\nserving ") + log_path.read_text().startswith(
            "serving "
        ) >= len(expected)

    proc = ManagedProcess.start(argv, name="readme-sim", log_dir=log_path.parent, ready=ready, ready_timeout=20)
    try:
        serving = [line for line in proc.log_text().splitlines() if line.startswith("serving ")]
        assert serving == expected
        assert state_file.exists()
    finally:
        assert proc.stop() == 0


def test_library_example_runs() -> None:
    (code,) = blocks("python")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"pm25 \d+(\.\d)? ug/m3\n", result.stdout), result.stdout
