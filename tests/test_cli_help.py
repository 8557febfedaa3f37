"""Every command of every Misto CLI prints its help: a technician's first step must never crash."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.main import get_command

from misto.cloud.cli import app as cloud_app
from misto.edge.cli import app as edge_app
from misto.sim.cli import app as sim_app


def _commands(app: typer.Typer) -> list[list[str]]:
    root = get_command(app)
    found: list[list[str]] = [[]]

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(root, [])
    return found


CASES = [
    *[("misto.edge.cli", path) for path in _commands(edge_app)],
    *[("misto.sim.cli", path) for path in _commands(sim_app)],
    *[("misto.cloud.cli", path) for path in _commands(cloud_app)],
]


@pytest.mark.parametrize(("module", "path"), CASES, ids=[f"{m.split('.')[1]}:{' '.join(p) or '-'}" for m, p in CASES])
def test_help_renders(module: str, path: list[str]) -> None:
    code = f"import sys; from {module} import main; sys.argv = ['prog', *sys.argv[1:]]; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, *path, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage" in result.stdout
