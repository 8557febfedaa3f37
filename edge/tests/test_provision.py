"""``misto-edge provision`` against a real running cloud service (its own process, as the end-to-end
tests start it): files written with mode 0600 and a configuration the agent accepts, existing files
kept without --force (the token not spent), clear errors for a bad URL, a refused token and an
unreachable server."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from misto.edge.provision import CONFIG_NAME, PASSWORD_NAME, ProvisionError, check_server
from misto.edge.settings import load_settings
from tests.fixtures.chain import BIN, Chain, Cloud
from tests.fixtures.net import LOOPBACK, free_port

TOKENS = "/api/v1/registry/gateways/{}/provisioning-tokens"


def provision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "misto-edge"), "provision", *args], capture_output=True, text=True, timeout=60, check=False
    )


def seed(cloud: Cloud) -> None:
    for path, body in (
        ("device-models", {"id": "aq1", "kind": "air", "manufacturer": "Acme", "name": "AQ-1", "metrics": ["pm25"]}),
        ("gateways", {"id": "gw-field", "name": "Field", "organisation": "City"}),
        ("devices", {"id": "aq-field-1", "gateway_id": "gw-field", "model_id": "aq1", "organisation": "City"}),
    ):
        status, answer = cloud.send("POST", f"/api/v1/registry/{path}", body)
        assert status == 201, answer


def new_token(cloud: Cloud) -> str:
    status, answer = cloud.send("POST", TOKENS.format("gw-field"), {})
    assert status == 201, answer
    token: str = answer["token"]
    return token


@pytest.fixture
def cloud(chain: Chain) -> Cloud:
    running = chain.cloud()
    seed(running)
    return running


def test_provision_writes_private_files_the_agent_accepts(cloud: Cloud, tmp_path: Path) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    done = provision("--server", cloud.api + "/", "--token", new_token(cloud), "--config-dir", str(config_dir))
    assert done.returncode == 0, done.stderr
    config, password = config_dir / CONFIG_NAME, config_dir / PASSWORD_NAME
    for path in (config, password):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert str(path) in done.stdout
    assert "misto-edge run" in done.stdout
    assert "aq-field-1" in done.stdout
    secret = password.read_text(encoding="utf-8").strip()
    assert len(secret) >= 40
    text = config.read_text(encoding="utf-8")
    assert secret not in text
    assert "#   - id: aq-field-1  (model aq1, air)" in text
    data = yaml.safe_load(text)
    assert data["gateway_id"] == "gw-field"
    assert data["broker"] == {"url": cloud_broker_url(cloud), "username": "gw-field", "password_file": PASSWORD_NAME}
    settings = load_settings(config, env={})
    assert settings.broker.resolved_password() == secret
    assert settings.devices == ()
    assert set(config_dir.iterdir()) == {config, password}  # no temporary file left

    # Files exist: refused before the token is spent; --force replaces them.
    token = new_token(cloud)
    kept = provision("--server", cloud.api, "--token", token, "--config-dir", str(config_dir))
    assert kept.returncode == 2
    assert "already exist" in kept.stderr
    assert "--force" in kept.stderr
    assert password.read_text(encoding="utf-8").strip() == secret
    forced = provision("--server", cloud.api, "--token", token, "--config-dir", str(config_dir), "--force")
    assert forced.returncode == 0, forced.stderr
    assert password.read_text(encoding="utf-8").strip() != secret
    assert stat.S_IMODE(password.stat().st_mode) == 0o600

    # The same token again: refused by the server, nothing written.
    (config_dir / CONFIG_NAME).unlink()
    (config_dir / PASSWORD_NAME).unlink()
    refused = provision("--server", cloud.api, "--token", token, "--config-dir", str(config_dir))
    assert refused.returncode == 1
    assert "HTTP 410" in refused.stderr
    assert "already used" in refused.stderr
    assert list(config_dir.iterdir()) == []


def cloud_broker_url(cloud: Cloud) -> str:
    """The broker URL the service hands out: its own broker.url (no registry.provisioning.broker_url)."""
    config = yaml.safe_load((cloud.db_path.parent / "cloud.yaml").read_text(encoding="utf-8"))
    url: str = config["broker"]["url"]
    return url


def test_unknown_token_and_unreachable_server(cloud: Cloud, tmp_path: Path) -> None:
    tmp_path = tmp_path / "etc"
    tmp_path.mkdir()
    unknown = provision("--server", cloud.api, "--token", "not-a-token", "--config-dir", str(tmp_path))
    assert unknown.returncode == 1
    assert "HTTP 401" in unknown.stderr
    assert "unknown token" in unknown.stderr
    port = free_port()
    gone = provision("--server", f"http://{LOOPBACK}:{port}", "--token", "t", "--config-dir", str(tmp_path))
    assert gone.returncode == 1
    assert f"cannot reach http://{LOOPBACK}:{port}" in gone.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("ftp://misto.example", "must start with https://"),
        ("misto.example", "must start with https://"),
        ("https://", "has no host"),
        ("https://misto.example:99999", "invalid port"),
        ("https://user:pw@misto.example", "only scheme, host, port and path"),
    ],
)
def test_bad_server_urls(server: str, message: str) -> None:
    with pytest.raises(ProvisionError, match=message) as error:
        check_server(server)
    assert error.value.exit_code == 2


def test_bad_url_on_the_command_line(tmp_path: Path) -> None:
    done = provision("--server", "misto.example", "--token", "t", "--config-dir", str(tmp_path))
    assert done.returncode == 2
    assert "--server: must start with https://" in done.stderr
    missing = provision("--server", "https://misto.example", "--token", "t", "--config-dir", str(tmp_path / "no"))
    assert missing.returncode == 2
    assert "is not a directory" in missing.stderr
