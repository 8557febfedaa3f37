"""``misto-cloud broker-files`` against a real SQLite registry, and the ``registry`` settings."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from misto.cloud.cli import app
from misto.cloud.errors import ConfigError
from misto.cloud.registry.credentials import BrokerCredentials, verify_secret
from misto.cloud.registry.models import GatewayCreate
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MISTO_"):
            monkeypatch.delenv(name)


async def _one_gateway(url: str) -> str:
    registry = await SqlRegistry.open(url)
    try:
        await registry.create_gateway(GatewayCreate(id="gw-1", name="Gateway 1", organisation="City"), actor="test")
        issued = await BrokerCredentials(registry).issue_gateway("gw-1", actor="test")
        return issued.secret
    finally:
        await registry.close()


def test_broker_files_writes_both_files_from_the_registry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    secret = asyncio.run(_one_gateway(url))
    config = tmp_path / "cloud.yaml"
    config.write_text(f"store:\n  path: {tmp_path / 'misto.db'}\nregistry:\n  url: {url}\n", encoding="utf-8")
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    result = CliRunner().invoke(
        app, ["broker-files", "--passwd", str(passwd), "--acl", str(acl), "--config", str(config)]
    )
    assert result.exit_code == 0, result.output
    assert f"{passwd}: 1 account(s), 1 gateway(s)" in result.output
    [line] = [line for line in passwd.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    username, password_hash = line.split(":", 1)
    assert username == "gw-1"
    assert verify_secret(secret, password_hash)
    assert secret not in passwd.read_text(encoding="utf-8")
    rules = acl.read_text(encoding="utf-8")
    assert "user gw-1\n" in rules
    assert "topic write misto/v1/gw-1/telemetry\n" in rules
    assert "topic read misto/v1/gw-1/cmd\n" in rules
    assert stat.S_IMODE(passwd.stat().st_mode) == stat.S_IMODE(acl.stat().st_mode) == 0o600


def test_broker_files_reports_a_failure(tmp_path: Path) -> None:
    config = tmp_path / "cloud.yaml"
    config.write_text(f"store:\n  path: {tmp_path / 'misto.db'}\n", encoding="utf-8")
    missing = tmp_path / "no-such-dir"
    result = CliRunner().invoke(
        app, ["broker-files", "--passwd", str(missing / "passwd"), "--acl", str(missing / "acl"), "-c", str(config)]
    )
    assert result.exit_code == 1
    assert str(missing / "acl") in result.output
    assert (tmp_path / "misto-registry.db").exists()  # the default registry, beside the store


def test_registry_url_default_and_checks(tmp_path: Path) -> None:
    settings = load_settings(overrides={"store": {"path": str(tmp_path / "misto.db")}})
    assert settings.registry.database_url(settings.store) == f"sqlite:///{tmp_path / 'misto-registry.db'}"
    influx = load_settings(overrides={"store": {"backend": "influx"}})
    assert influx.registry.database_url(influx.store) == "sqlite:///misto-registry.db"
    url = "postgresql+psycopg://misto:a-real-password-1@db.example/misto"
    pg = load_settings(overrides={"registry": {"url": url}})
    assert pg.registry.database_url(pg.store) == url
    assert pg.registry.display_url(pg.store) == "postgresql+psycopg://misto:***@db.example/misto"
    for bad, message in (
        ("mysql://x@host/db", "must start with sqlite:/// or postgresql+psycopg://"),
        ("sqlite://", "must be sqlite:///PATH"),
        ("postgresql+psycopg://misto:changeme@host/db", "placeholder"),
        ("postgresql+psycopg:///db", "has no host"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_settings(overrides={"registry": {"url": bad}})
        [error] = caught.value.errors
        assert (error.path, message in error.message) == ("registry.url", True), (bad, error)
    with pytest.raises(ConfigError) as same:
        load_settings(
            overrides={"store": {"path": str(tmp_path / "x.db")}, "registry": {"url": f"sqlite:///{tmp_path / 'x.db'}"}}
        )
    assert "registry.url must name a file other than store.path" in str(same.value)
