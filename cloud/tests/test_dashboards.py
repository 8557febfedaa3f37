"""The generated Grafana dashboards and their provisioning files: committed JSON equals the
generator's, uids stay unique and stable, every panel names the provisioned datasource, and the
provisioning points where docker-compose.yml mounts the files.

``push`` is not run against a Grafana here (none is installable on the test machines); its
failure path (no Grafana listening) and its argument checks are."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from misto.cloud.cli import app
from misto.cloud.dashboards import DATASOURCE_UID, dashboards, differences, rendered, write
from misto.cloud.dashboards.push import Credentials, DashboardPushError, DatasourceSpec, push
from tests.fixtures.net import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "dashboards" / "grafana" / "dashboards"
PROVISIONING = ROOT / "dashboards" / "grafana" / "provisioning"
runner = CliRunner()


def _models() -> list[dict[str, Any]]:
    return [json.loads(text) for text in rendered().values()]


def test_committed_json_is_what_the_generator_makes() -> None:
    assert differences(BOARDS) == []
    result = runner.invoke(app, ["dashboards", "check", "--dir", str(BOARDS)])
    assert result.exit_code == 0, result.output
    assert "8 dashboards up to date" in result.output


def test_check_fails_on_a_hand_edited_missing_or_extra_file(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "air.json").write_text((tmp_path / "air.json").read_text().replace("PM2.5", "PM 2.5"))
    (tmp_path / "noise.json").unlink()
    (tmp_path / "mine.json").write_text("{}")
    result = runner.invoke(app, ["dashboards", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "air.json: differs from the generator" in result.output
    assert "noise.json: missing" in result.output
    assert "mine.json: not made by the generator" in result.output


def test_build_writes_every_dashboard(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboards", "build", "--dir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(rendered())
    assert differences(tmp_path / "out") == []


def test_the_issue_s_dashboards_exist_with_unique_stable_uids() -> None:
    uids = [board.uid for board in dashboards()]
    assert len(uids) == len(set(uids))
    assert set(uids) == {
        "misto-city-overview",
        "misto-air",
        "misto-noise",
        "misto-traffic",
        "misto-parking",
        "misto-waste",
        "misto-health",
        "misto-ingest",
    }
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", uid) for uid in uids)  # Grafana's uid limit is 40


def test_rendering_is_deterministic() -> None:
    assert rendered() == rendered()


def test_every_panel_and_target_and_variable_uses_the_provisioned_datasource() -> None:
    for model in _models():
        assert model["id"] is None
        for panel in model["panels"]:
            where = f"{model['uid']} / {panel['title']}"
            assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID, where
                assert target["rawQuery"] is True, where
                assert "$timeFilter" in target["query"], f"{where}: every query is bounded by the time range"
        for variable in model["templating"]["list"]:
            if variable["type"] == "custom":
                continue
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["query"].startswith("SHOW TAG VALUES FROM")


def test_panels_sit_on_the_grid_without_overlapping() -> None:
    for model in _models():
        taken: set[tuple[int, int]] = set()
        for panel in model["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0, panel["title"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
            assert not cells & taken, f"{model['uid']}: {panel['title']} overlaps"
            taken |= cells


def test_city_overview_reads_only_rollups_and_status() -> None:
    overview = next(m for m in _models() if m["uid"] == "misto-city-overview")
    for panel in overview["panels"]:
        for target in panel["targets"]:
            sources = re.findall(r'FROM ("[^"]+"(?:\."[^"]+")?)', target["query"])
            assert sources, target["query"]
            for source in sources:
                assert source.startswith(('"rollup_1m".', '"$resolution".')) or source == '"gateway_status"', source
            if '"rollup_1m".' in target["query"]:  # the "now" stats: the last hour of the 1-minute rollup
                assert panel["timeFrom"] == "1h", panel["title"]
        assert panel.get("interval") == "1m", panel["title"]
    [resolution] = overview["templating"]["list"]
    assert resolution["type"] == "custom"
    assert resolution["current"]["value"] == "rollup_1h"
    assert [o["value"] for o in resolution["options"]] == ["rollup_1h", "rollup_1m"]


def test_datasource_provisioning_matches_the_dashboards() -> None:
    data = yaml.safe_load((PROVISIONING / "datasources" / "misto-influxdb.yaml").read_text(encoding="utf-8"))
    [source] = data["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["dbName"] == "misto"
    assert source["url"].startswith("${")  # from the environment
    assert source["user"].startswith("${")
    assert source["secureJsonData"]["password"].startswith("$__file{/run/secrets/")  # from a secret file


def test_dashboard_provider_points_where_compose_mounts_the_json() -> None:
    data = yaml.safe_load((PROVISIONING / "dashboards" / "misto.yaml").read_text(encoding="utf-8"))
    [provider] = data["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "Misto"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"] if volume.startswith("./"))
    assert mounts["./dashboards/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./dashboards/grafana/provisioning"] == "/etc/grafana/provisioning"
    secrets = set(grafana["secrets"])
    assert "influx_grafana_password" in secrets
    cloud = compose["services"]["cloud"]["environment"]
    assert cloud["MISTO_STORE__BACKEND"] == "influx"
    assert cloud["MISTO_STORE__URL"] == "http://influxdb:8086"


def test_push_without_a_grafana_says_where_and_what_failed() -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(DashboardPushError) as caught:
        push(url, Credentials(token="a-real-looking-token-1234"), dashboards(), timeout_s=2.0)
    assert caught.value.url == url
    assert caught.value.step == "health check"
    assert "ConnectionError" in caught.value.reason


def test_push_cli_needs_credentials_and_refuses_placeholders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    result = runner.invoke(app, ["dashboards", "push", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "--token-file" in result.output
    placeholder = tmp_path / "token"
    placeholder.write_text("changeme\n")
    result = runner.invoke(app, ["dashboards", "push", "--url", "http://127.0.0.1:1", "--token-file", str(placeholder)])
    assert result.exit_code == 2
    assert "placeholder" in result.output


def test_datasource_body_keeps_the_password_out_of_its_repr() -> None:
    spec = DatasourceSpec("http://influxdb:8086", user="grafana", password="s3cret-value-xyz")
    body = spec.as_json()
    assert body["uid"] == DATASOURCE_UID
    assert body["jsonData"] == {"dbName": "misto", "httpMode": "POST", "version": "InfluxQL", "timeInterval": "10s"}
    assert body["secureJsonData"] == {"password": "s3cret-value-xyz"}
    assert "s3cret" not in repr(spec)
