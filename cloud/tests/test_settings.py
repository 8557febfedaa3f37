"""Settings: every error at once, each naming its key; env over file; secrets that are not placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from misto.cloud.errors import ConfigError
from misto.cloud.settings import CloudSettings, MqttVersion, load_settings

CLOUD = Path(__file__).resolve().parent.parent
SAMPLE = CLOUD / "config" / "misto-cloud.sample.yaml"
SECRETS = {
    "secrets/broker-password": "a-real-broker-password-1",
    "secrets/operator-token": "0123456789abcdef0123456789abcdef",
    "secrets/gw-demo-password": "a-real-gateway-password-2",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MISTO_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "misto-cloud.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(exc: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {error.path: error.message for error in exc.value.errors}


def with_secret_files(directory: Path) -> None:
    for name, secret in SECRETS.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(secret + "\n", encoding="utf-8")


def test_defaults_need_no_file() -> None:
    settings = load_settings()
    assert (settings.broker.host, settings.broker.port, settings.broker.tls) == ("127.0.0.1", 1883, False)
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8080)
    assert settings.store.path == Path("misto.db")
    assert settings.broker.protocol is MqttVersion.V5
    assert not settings.embedded_broker.enabled


def test_sample_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with_secret_files(tmp_path)
    settings = load_settings(SAMPLE)
    assert settings.broker.password_value() == SECRETS["secrets/broker-password"]
    assert settings.api.operator_token_value() == SECRETS["secrets/operator-token"]
    assert [u.username for u in settings.embedded_broker.users] == ["gw-demo"]
    assert settings.embedded_broker.users[0].password_value() == SECRETS["secrets/gw-demo-password"]
    # Every key of the model appears in the sample (commented out where it has no default), so docs cannot drift.
    text = SAMPLE.read_text(encoding="utf-8")
    for section, model in CloudSettings.model_fields.items():
        assert re.search(rf"^{section}:", text, re.MULTILINE), section
        annotation = model.annotation
        for key in getattr(annotation, "model_fields", {}):
            assert re.search(rf"^\s+#? ?{key}:", text, re.MULTILINE), f"{section}.{key} missing from the sample"


def test_the_control_database_sits_next_to_the_store_unless_set(tmp_path: Path) -> None:
    settings = load_settings()
    assert (settings.control.path, settings.control.database(settings.store)) == (None, Path("misto-control.db"))
    assert (settings.control.publish_timeout_s, settings.control.command_expiry_s) == (10.0, 600)
    moved = load_settings(overrides={"store": {"path": str(tmp_path / "data" / "misto.db")}})
    assert moved.control.database(moved.store) == tmp_path / "data" / "misto-control.db"
    own = load_settings(overrides={"control": {"path": str(tmp_path / "control.db")}})
    assert own.control.database(own.store) == tmp_path / "control.db"
    with pytest.raises(ConfigError) as exc:
        load_settings(
            overrides={
                "store": {"path": str(tmp_path / "misto.db")},
                "control": {"path": str(tmp_path / "misto.db"), "publish_timeout_s": 0, "command_expiry_s": 0},
            }
        )
    errors = errors_of(exc)
    assert set(errors) == {"control.publish_timeout_s", "control.command_expiry_s"}
    with pytest.raises(ConfigError, match=r"control\.path must differ from store\.path"):
        load_settings(overrides={"store": {"path": "a.db"}, "control": {"path": "./a.db"}})


def test_readme_shows_the_sample() -> None:
    readme = (CLOUD / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
    assert SAMPLE.read_text(encoding="utf-8") in blocks


def test_all_errors_at_once_each_naming_its_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
broker:
  url: http://broker.example:1883
  username: ingester
  password: changeme
  keepalive_s: 1
  bogus: 1
api:
  port: 70000
  operator_token: short
store:
  backend: postgres
embedded_broker:
  users:
    - {username: gw-1, password: "a-real-password-3", role: gateway}
    - {username: gw-1, password: "a-real-password-4", role: admin}
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    errors = errors_of(exc)
    assert set(errors) == {
        "broker.url",
        "broker.password",
        "broker.keepalive_s",
        "broker.bogus",
        "api.port",
        "api.operator_token",
        "store.backend",
        "embedded_broker.users",
    }
    assert "mqtt:// or mqtts://" in errors["broker.url"]
    assert "placeholder" in errors["broker.password"]
    assert "changeme" not in errors["broker.password"]  # a secret is never echoed
    assert "unknown key" in errors["broker.bogus"]
    assert "at least 16 characters" in errors["api.operator_token"]
    assert "'gw-1' appears twice (users[0] and users[1])" in errors["embedded_broker.users"]
    assert str(path) in str(exc.value)


def test_nested_list_errors_name_the_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
embedded_broker:
  users:
    - {username: gw-1, password: "a-real-password-5"}
    - {username: gw-2, password: ""}
    - {username: gw-3, role: superuser, password: "a-real-password-6"}
""",
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    errors = errors_of(exc)
    assert set(errors) == {"embedded_broker.users[1].password", "embedded_broker.users[2].role"}
    assert "must not be empty" in errors["embedded_broker.users[1].password"]


@pytest.mark.parametrize(
    "secret", ["", "   ", "changeme", "CHANGE-ME", "password", "secret", "<your password>", "ChangeMe123"]
)
def test_placeholder_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(overrides={"broker": {"username": "ingester", "password": secret}})
    assert set(errors_of(exc)) == {"broker.password"}


def test_secret_files(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_text("a-real-password-7\n", encoding="utf-8")
    placeholder = tmp_path / "placeholder"
    placeholder.write_text("changeme\n", encoding="utf-8")
    settings = load_settings(overrides={"broker": {"username": "ingester", "password_file": str(good)}})
    assert settings.broker.password_value() == "a-real-password-7"
    with pytest.raises(ConfigError) as exc:
        load_settings(
            overrides={
                "broker": {"username": "ingester", "password_file": str(tmp_path / "missing")},
                "api": {"operator_token_file": str(placeholder)},
            }
        )
    errors = errors_of(exc)
    assert "does not exist" in errors["broker.password_file"]
    assert "placeholder" in errors["api.operator_token_file"]


@pytest.mark.parametrize(
    ("broker", "path", "message"),
    [
        ({"username": "ingester"}, "broker", "password (or password_file) is required when username is set"),
        ({"password": "a-real-password-8"}, "broker", "username is required"),
        ({"url": "mqtt://user:pw@host:1883"}, "broker.url", "not in the URL"),
        ({"url": "mqtt://:1883"}, "broker.url", "has no host"),
        ({"url": "mqtt://host:99999"}, "broker.url", "invalid port"),
        ({"url": "mqtt://host:1883/path"}, "broker.url", "just mqtt[s]://host:port"),
        ({"share_group": "a/b"}, "broker.share_group", "without '/', '+' or '#'"),
        ({"reconnect_min_s": 10, "reconnect_max_s": 1}, "broker", "must not exceed"),
        ({"protocol": "4"}, "broker.protocol", "'5' or '3.1.1'"),
    ],
)
def test_broker_rules(broker: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(overrides={"broker": broker})
    errors = errors_of(exc)
    assert list(errors) == [path]
    assert message in errors[path]


def test_tls_url_and_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    settings = load_settings(overrides={"broker": {"url": "mqtts://broker.example", "ca_file": str(ca)}})
    assert (settings.broker.host, settings.broker.port, settings.broker.tls) == ("broker.example", 8883, True)
    with pytest.raises(ConfigError, match="ca_file is only used with an mqtts:// url"):
        load_settings(overrides={"broker": {"ca_file": str(ca)}})
    with pytest.raises(ConfigError, match=r"broker\.ca_file: file .* does not exist"):
        load_settings(overrides={"broker": {"url": "mqtts://b", "ca_file": str(tmp_path / "nope.pem")}})


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "api:\n  port: 9000\n  host: 0.0.0.0\nbroker:\n  url: mqtt://from-file:1884\n")
    monkeypatch.setenv("MISTO_API__PORT", "9100")
    monkeypatch.setenv("MISTO_BROKER__USERNAME", "ingester")
    monkeypatch.setenv("MISTO_BROKER__PASSWORD", "a-real-password-9")
    settings = load_settings(path)
    assert (settings.api.host, settings.api.port) == ("0.0.0.0", 9100)
    assert (settings.broker.host, settings.broker.port, settings.broker.username) == ("from-file", 1884, "ingester")
    monkeypatch.setenv("MISTO_API__PORT", "eighty")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert list(errors_of(exc)) == ["api.port"]


def test_overrides_win_and_merge_into_sections(tmp_path: Path) -> None:
    path = write(tmp_path, "embedded_broker:\n  port: 1999\n")
    settings = load_settings(path, overrides={"embedded_broker": {"enabled": True}})
    assert (settings.embedded_broker.enabled, settings.embedded_broker.port) == (True, 1999)


def test_share_group_is_refused_with_the_embedded_broker() -> None:
    with pytest.raises(ConfigError, match="share_group needs MQTT 5 shared subscriptions"):
        load_settings(overrides={"broker": {"share_group": "ingesters"}, "embedded_broker": {"enabled": True}})


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("broker:\n  url: [unclosed\n", ":3:", "invalid YAML"),
        ("- just\n- a list\n", "", "top level must be a mapping"),
    ],
)
def test_file_problems(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    [error] = exc.value.errors
    assert error.path.startswith(str(path))
    assert where in error.path
    assert message in error.message


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_settings(Path("/nonexistent/misto-cloud.yaml"))


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "# nothing yet\n")) == load_settings()


def test_secrets_are_not_in_repr() -> None:
    settings = load_settings(overrides={"broker": {"username": "ingester", "password": "a-real-password-10"}})
    assert "a-real-password-10" not in repr(settings)
    assert "a-real-password-10" not in yaml.safe_dump(settings.model_dump(mode="json"))
