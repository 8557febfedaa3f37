"""The architecture's rules, checked on the source: what each distribution depends on, and which
modules may import each outside library (one adapter per library)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTS = {"protocol": "protocol", "edge": "edge", "firmware-sim": "sim", "cloud": "cloud"}

#: library -> the only modules (paths under the repo) allowed to import it
ADAPTERS: dict[str, tuple[str, ...]] = {
    # The simulator speaks Modbus with its own code (misto.sim.modbus), so that its tests check the
    # agent's pymodbus client against an independent implementation, and faults act on raw frames.
    "pymodbus": ("edge/src/misto/edge/drivers/modbus/",),
    "paho": (
        "edge/src/misto/edge/uplink/mqtt",  # mqtt.py, mqtt_probe.py
        "cloud/src/misto/cloud/ingest/mqtt.py",
        "cloud/src/misto/cloud/ingest/paho_client.py",
    ),
    "amqtt": ("cloud/src/misto/cloud/embedded_broker.py",),
    "sqlite3": ("cloud/src/misto/cloud/storage/sqlite", "edge/src/misto/edge/buffer/sqlite_log.py"),
    "fastapi": ("cloud/src/misto/cloud/api/",),
    "httpx": ("cloud/src/misto/cloud/storage/influx_http.py",),
    "grafana_client": ("cloud/src/misto/cloud/dashboards/push.py",),
    "prometheus_client": ("cloud/src/misto/cloud/api/routes/metrics.py",),
    "serial": ("edge/src/misto/edge/drivers/serial_line/port.py",),
    "numpy": ("edge/src/misto/edge/drivers/camera/", "firmware-sim/src/misto/sim/camera/"),
    "shapely": ("cloud/src/misto/cloud/geo/",),
    "pyproj": ("cloud/src/misto/cloud/geo/crs.py",),
    # The registry's storage side; its models, repository interface and errors stay free of SQLAlchemy.
    "sqlalchemy": (
        "cloud/src/misto/cloud/auth/store.py",  # people and API keys, on the registry's SqlRegistry
        *(
            f"cloud/src/misto/cloud/registry/{m}"
            for m in (
                "sql.py",
                "engine.py",
                "tables.py",
                "rows.py",
                "audit.py",
                "spatial.py",
                "credentials.py",
                "provisioning.py",
                "layers.py",
                "layers_spatial.py",
                "migrations/",
            )
        ),
    ),
    "alembic": ("cloud/src/misto/cloud/registry/migrations/",),
    "psycopg": (),  # loaded by SQLAlchemy from a postgresql+psycopg:// URL, imported by no module
    "jwt": ("cloud/src/misto/cloud/auth/tokens.py",),
    "pwdlib": ("cloud/src/misto/cloud/embedded_broker.py", "cloud/src/misto/cloud/auth/passwords.py"),
    "multipart": (),  # python-multipart: loaded by FastAPI to parse the sign-in form
}


def _dependencies(dist: str) -> set[str]:
    project = tomllib.loads((ROOT / dist / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}


def test_protocol_depends_on_msgspec_alone() -> None:
    assert _dependencies("protocol") == {"msgspec"}


def test_a_gateway_installs_no_web_framework_or_database_client() -> None:
    heavy = {"fastapi", "uvicorn", "starlette", "sqlalchemy", "psycopg", "influxdb-client", "amqtt", "misto-cloud"}
    assert not _dependencies("edge") & heavy


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _sources() -> list[Path]:
    return sorted(p for dist in DISTS for p in (ROOT / dist / "src").rglob("*.py"))


@pytest.mark.parametrize("library", list(ADAPTERS))
def test_each_library_is_imported_only_by_its_adapter(library: str) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources()
        if library in _imports(path) and not str(path.relative_to(ROOT)).startswith(ADAPTERS[library])
    ]
    assert offenders == [], f"{library} imported outside its adapter: {offenders}"


@pytest.mark.parametrize(("dist", "package"), list(DISTS.items()))
def test_distributions_import_only_the_misto_packages_they_depend_on(dist: str, package: str) -> None:
    allowed = {"protocol", package} | ({"edge"} if dist == "edge" else set())
    for path in (ROOT / dist / "src").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        used = set(re.findall(r"^\s*(?:from|import) misto\.(\w+)", text, flags=re.MULTILINE))
        assert used <= allowed, f"{path.relative_to(ROOT)} imports misto.{sorted(used - allowed)}"


def test_no_namespace_init_file() -> None:
    for dist in DISTS:
        assert not (ROOT / dist / "src" / "misto" / "__init__.py").exists(), f"{dist}: misto/ must stay a namespace"
