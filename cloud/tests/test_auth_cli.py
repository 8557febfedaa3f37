"""``misto-cloud users ...`` and ``misto-cloud api-keys ...`` against a real SQLite registry."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from misto.cloud.auth import keys
from misto.cloud.auth.passwords import verify_password
from misto.cloud.auth.store import AuthStore
from misto.cloud.cli import app
from misto.cloud.registry.sql import SqlRegistry

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MISTO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cloud.yaml"
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    path.write_text(f"store:\n  path: {tmp_path / 'misto.db'}\nregistry:\n  url: {url}\n", encoding="utf-8")
    return path


def registry_url(config: Path) -> str:
    return f"sqlite:///{config.parent / 'registry.db'}"


async def password_matches(url: str, username: str, password: str) -> bool:
    async with await SqlRegistry.open(url) as registry:
        login = await AuthStore(registry).login(username)
    return login is not None and verify_password(password, login.password_hash)


def test_users_add_list_set_password_and_disable(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(
        app,
        ["users", "add", "olena", "--role", "admin", "--name", "Olena K.", "--config", str(config)],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert added.exit_code == 0, added.output
    assert "user olena: added as admin" in added.output
    assert asyncio.run(password_matches(registry_url(config), "olena", PASSWORD))
    password_file = tmp_path / "new-password"
    password_file.write_text("a brand new pass phrase\n", encoding="utf-8")
    changed = runner.invoke(
        app, ["users", "set-password", "olena", "--password-file", str(password_file), "--config", str(config)]
    )
    assert changed.exit_code == 0, changed.output
    assert asyncio.run(password_matches(registry_url(config), "olena", "a brand new pass phrase"))
    assert runner.invoke(app, ["users", "disable", "olena", "--config", str(config)]).exit_code == 0
    listing = runner.invoke(app, ["users", "list", "--config", str(config)])
    assert "olena\tadmin\tdisabled\tlast sign-in never\tOlena K." in listing.output
    weak = tmp_path / "weak"
    weak.write_text("short\n", encoding="utf-8")
    refused = runner.invoke(
        app, ["users", "add", "petro", "--role", "citizen", "--password-file", str(weak), "--config", str(config)]
    )
    assert refused.exit_code == 2
    assert "password" in refused.output
    missing = runner.invoke(app, ["users", "disable", "nobody", "--config", str(config)])
    assert missing.exit_code == 1
    assert "nobody" in missing.output


def test_api_keys_create_list_revoke(config: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "api-keys",
            "create",
            "--name",
            "open data",
            "--organisation",
            "KSU",
            "--rate-limit",
            "30",
            "--config",
            str(config),
        ],
    )
    assert created.exit_code == 0, created.output
    [key] = [line for line in created.stdout.splitlines() if line.startswith("mst_")]
    parts = keys.parse_key(key)
    assert parts is not None
    listing = runner.invoke(app, ["api-keys", "list", "--config", str(config)])
    assert f"{parts.key_id}\tKSU\tpartner\t30/min\tactive\topen data" in listing.output
    assert parts.secret not in listing.output
    assert runner.invoke(app, ["api-keys", "revoke", parts.key_id, "--config", str(config)]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["api-keys", "list", "--config", str(config)]).output
