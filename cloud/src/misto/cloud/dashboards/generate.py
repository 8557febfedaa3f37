"""The dashboards as files: every dashboard rendered to JSON (stable: same code, same bytes),
written to a folder (``misto-cloud dashboards build``) or compared with one (``... check``).

The committed copies live in ``dashboards/grafana/dashboards/``, where Grafana's file provisioning
(``dashboards/grafana/provisioning/dashboards/misto.yaml``) reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from misto.cloud.dashboards.city import overview
from misto.cloud.dashboards.kinds import air, noise, parking, traffic, waste
from misto.cloud.dashboards.model import Dashboard, render
from misto.cloud.dashboards.operations import health, ingest

DEFAULT_DIR = Path("dashboards/grafana/dashboards")


def dashboards() -> tuple[Dashboard, ...]:
    return (overview(), air(), noise(), traffic(), parking(), waste(), health(), ingest())


def to_text(board: Dashboard) -> str:
    return json.dumps(render(board), indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {board.file: to_text(board) for board in dashboards()}


def write(folder: Path) -> list[Path]:
    """Write every dashboard into ``folder`` (created if missing); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(folder: Path) -> list[str]:
    """How ``folder`` differs from what the generator makes: missing, changed or extra files."""
    expected = rendered()
    problems = []
    for name, text in expected.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing (run `misto-cloud dashboards build`)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the generator (run `misto-cloud dashboards build`)")
    problems += [
        f"{path}: not made by the generator (remove it or add it to misto.cloud.dashboards)"
        for path in sorted(folder.glob("*.json"))
        if path.name not in expected
    ]
    return problems


def targets(model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(panel title, InfluxQL)`` of every target of a rendered dashboard."""
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["query"]
