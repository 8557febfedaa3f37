"""``misto-cloud layers`` against a real SQLite registry: load the sample base, export a layer,
import it back (with a dry run and a declared CRS), and a bad file listed problem by problem."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pyproj import Transformer
from typer.testing import CliRunner

from misto.cloud.cli import app
from misto.cloud.geo.layers import Layer
from misto.cloud.geo.sample import load_sample_base


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MISTO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cloud.yaml"
    path.write_text(f"store:\n  path: {tmp_path / 'misto.db'}\n", encoding="utf-8")
    return path


def run(*argv: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["layers", *argv])
    return result.exit_code, result.stdout, result.stderr


def test_load_sample_then_export(config: Path, tmp_path: Path) -> None:
    code, out, err = run("load-sample", "--config", str(config))
    assert code == 0, out + err
    total = sum(len(data.features) for data in load_sample_base().values())
    assert f"loaded the Kherson sample base (synthetic): {total} features" in out
    assert "districts: 8 feature(s) written (replace), 0 removed, 8 in the layer" in out
    code, out, err = run("export", "districts", "--config", str(config))
    assert code == 0, err
    exported = json.loads(out)
    assert exported["features"] == load_sample_base()[Layer.DISTRICTS].to_geojson()["features"]
    target = tmp_path / "water.geojson"
    code, _, err = run("export", "water_network", "-o", str(target), "--config", str(config))
    assert code == 0, err
    assert len(json.loads(target.read_text(encoding="utf-8"))["features"]) == 6


def test_import_with_dry_run_and_a_declared_crs(config: Path, tmp_path: Path) -> None:
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32636", always_xy=True)
    doc = json.loads(json.dumps(load_sample_base()[Layer.MONUMENTS].to_geojson()))
    for feature in doc["features"]:
        feature["geometry"]["coordinates"] = list(to_utm.transform(*feature["geometry"]["coordinates"]))
    path = tmp_path / "monuments-utm.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, err = run("import", str(path), "--layer", "monuments", "--dry-run", "--config", str(config))
    assert code == 2, out  # UTM metres are not WGS 84 degrees: every position is out of bounds
    assert err.count("features[") == 4
    code, out, err = run(
        "import", str(path), "--layer", "monuments", "--crs", "EPSG:32636", "--dry-run", "--config", str(config)
    )
    assert code == 0, err
    assert "monuments: dry run: 4 feature(s) valid, nothing written" in out
    code, out, err = run("import", str(path), "-l", "monuments", "--crs", "EPSG:32636", "--config", str(config))
    assert code == 0, err
    assert "monuments: 4 feature(s) written (replace), 0 removed, 4 in the layer" in out
    code, out, _ = run("export", "monuments", "--config", str(config))
    expected = load_sample_base()[Layer.MONUMENTS].features[0].geometry["coordinates"]
    assert json.loads(out)["features"][0]["geometry"]["coordinates"] == pytest.approx(expected, abs=1e-8)


def test_a_bad_file_lists_every_problem_and_imports_nothing(config: Path, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(load_sample_base()[Layer.DISTRICTS].to_geojson()))
    doc["features"][2]["geometry"]["coordinates"][0].pop()  # ring no longer closed
    doc["features"][5]["properties"] = {"name": 7}
    path = tmp_path / "districts.geojson"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, err = run("import", str(path), "--layer", "districts", "--config", str(config))
    assert code == 2, out
    assert "features[2].geometry.coordinates[0]" in err
    assert "features[5].properties.name" in err
    assert "nothing imported" in err
    code, out, _ = run("export", "districts", "--config", str(config))
    assert json.loads(out)["features"] == []
    code, _, err = run("import", str(path), "--layer", "roads", "--config", str(config))
    assert code == 2
    assert "roads" in err
