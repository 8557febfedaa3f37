"""The dashboards as files: every dashboard rendered to JSON (stable: same code, same bytes),
written to a folder (``misto-cloud dashboards build``) or compared with one (``... check``).

The committed copies live in ``dashboards/grafana/dashboards/``, where Grafana's file provisioning
(``dashboards/grafana/provisioning/dashboards/misto.yaml``) reads them. The SQLite flavour of the
dashboards that have one (:func:`sqlite_dashboards`) lives in ``dashboards/grafana/sqlite/dashboards/``,
with its own provisioning (``dashboards/grafana/sqlite/provisioning/``): an operator provisions
one or the other, by the store they run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from misto.cloud.dashboards.city import overview
from misto.cloud.dashboards.kinds import air, noise, parking, traffic, waste
from misto.cloud.dashboards.model import Dashboard, Flavour, has_sqlite, render
from misto.cloud.dashboards.operations import health, ingest

DEFAULT_DIR = Path("dashboards/grafana/dashboards")


def dashboards() -> tuple[Dashboard, ...]:
    return (overview(), air(), noise(), traffic(), parking(), waste(), health(), ingest())


def sqlite_dashboards() -> tuple[Dashboard, ...]:
    """The dashboards with an SQLite flavour (every query has its SQL)."""
    return tuple(board for board in dashboards() if has_sqlite(board))


def to_text(board: Dashboard, flavour: Flavour = Flavour.INFLUXDB) -> str:
    return json.dumps(render(board, flavour), indent=2, ensure_ascii=False) + "\n"


def rendered(flavour: Flavour = Flavour.INFLUXDB) -> dict[str, str]:
    """File name -> JSON text of every dashboard of ``flavour``."""
    boards = sqlite_dashboards() if flavour is Flavour.SQLITE else dashboards()
    return {board.file: to_text(board, flavour) for board in boards}


def write(folder: Path, flavour: Flavour = Flavour.INFLUXDB) -> list[Path]:
    """Write every dashboard of ``flavour`` into ``folder`` (created if missing); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered(flavour).items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(folder: Path, flavour: Flavour = Flavour.INFLUXDB) -> list[str]:
    """How ``folder`` differs from what the generator makes: missing, changed or extra files."""
    expected = rendered(flavour)
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
    """``(panel title, query)`` of every target of a rendered dashboard (InfluxQL or SQL)."""
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target.get("query", target.get("rawQueryText", ""))
