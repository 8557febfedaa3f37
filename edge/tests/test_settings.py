"""Settings: a good config, every error at once with its path, secrets, and the cases in cases/<name>/."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from misto.edge.config_errors import format_loc
from misto.edge.durations import parse_duration
from misto.edge.errors import ConfigError
from misto.edge.registers import DataType, Order, Table
from misto.edge.registers.profiles import builtin_profiles
from misto.edge.settings import PASSWORD_ENV, Settings, load_settings, settings_from_data

CASES = Path(__file__).parent / "cases"
SAMPLE = Path(__file__).parents[1] / "config" / "gateway.sample.yaml"

GOOD = """\
gateway_id: gw-test
broker:
  url: mqtt://127.0.0.1:18830
  username: gw-test
  password_file: secrets/broker-password
poll_interval: 5s
devices:
  - {id: aq-1, driver: modbus_tcp, host: 127.0.0.1, port: 5020, profile: aq1}
  - id: custom-1
    driver: modbus_tcp
    host: 10.0.0.6
    unit_id: 7
    poll_interval: 1m
    timeout: 500ms
    retries: 0
    registers:
      - {metric: temperature, table: holding, address: 100, type: int16, scale: 0.1, offset: -40}
      - {metric: co, table: input, address: 0, type: float32, word_order: little, byte_order: little, unit: mg/m3}
"""


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def good_config(tmp_path: Path, password: str = "s3cret-for-tests\n") -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "broker-password").write_text(password, encoding="utf-8")
    return write(tmp_path, GOOD)


def test_good_config(tmp_path: Path) -> None:
    settings = load_settings(good_config(tmp_path), env={})
    assert settings.gateway_id == "gw-test"
    assert settings.client_id == "gw-test"  # defaults to the gateway id
    assert (settings.broker.host, settings.broker.port, settings.broker.use_tls) == ("127.0.0.1", 18830, False)
    assert settings.broker.resolved_password() == "s3cret-for-tests"  # the file's newline is not part of it
    assert settings.poll_interval == 5.0
    aq, custom = settings.devices
    assert (aq.port, aq.unit_id, aq.timeout, aq.retries) == (5020, 1, 3.0, 2)
    assert settings.interval_of(aq) == 5.0
    assert settings.interval_of(custom) == 60.0
    assert (custom.unit_id, custom.timeout, custom.retries) == (7, 0.5, 0)
    assert len(aq.specs()) == 8
    temperature, co = custom.specs()
    assert (temperature.table, temperature.address, temperature.type) == (Table.HOLDING, 100, DataType.INT16)
    assert (temperature.scale, temperature.offset, temperature.unit) == (0.1, -40.0, "Cel")  # unit from the vocabulary
    assert (co.word_order, co.byte_order, co.unit) == (Order.LITTLE, Order.LITTLE, "mg/m3")
    assert settings.register_count() == 10


def test_secret_is_not_shown(tmp_path: Path) -> None:
    settings = load_settings(good_config(tmp_path), env={})
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())


def test_environment_password_wins(tmp_path: Path) -> None:
    settings = load_settings(good_config(tmp_path), env={PASSWORD_ENV: "from-env"})
    assert settings.broker.resolved_password() == "from-env"


@pytest.mark.parametrize("password", ["", "\n"])
def test_empty_password_file_is_refused(tmp_path: Path, password: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(good_config(tmp_path, password), env={})
    (issue,) = caught.value.issues
    assert str(issue) == "broker.password_file: 'secrets/broker-password' (relative to the config file) is empty"


def test_inline_password_and_tls_paths(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here", encoding="utf-8")
    data = {
        "gateway_id": "gw-test",
        "broker": {"url": "mqtts://broker.example", "username": "u", "password": "pw-1", "tls": {"ca_file": "ca.pem"}},
    }
    settings = settings_from_data(data, base_dir=tmp_path, env={})
    assert settings.broker.resolved_password() == "pw-1"
    assert settings.broker.port == 8883
    assert settings.broker.tls is not None
    assert settings.broker.tls.ca_file == tmp_path / "ca.pem"


def test_anonymous_broker_needs_no_password() -> None:
    settings = settings_from_data({"gateway_id": "gw-test", "broker": {"url": "mqtt://localhost"}}, env={})
    assert settings.broker.resolved_password() is None
    assert settings.devices == ()


def test_validation_does_not_change_its_input(tmp_path: Path) -> None:
    data = yaml.safe_load(good_config(tmp_path).read_text(encoding="utf-8"))
    before = copy.deepcopy(data)
    settings_from_data(data, base_dir=tmp_path, env={PASSWORD_ENV: "x-y-z"})
    assert data == before
    with pytest.raises(ConfigError):
        settings_from_data({**data, "poll_interval": -1}, base_dir=tmp_path, env={})
    assert data == before


def test_settings_are_immutable(tmp_path: Path) -> None:
    settings = load_settings(good_config(tmp_path), env={})
    with pytest.raises(ValueError, match="frozen"):
        settings.poll_interval = 1.0  # type: ignore[misc]


def test_several_errors_at_once_each_with_its_path(tmp_path: Path) -> None:
    text = GOOD.replace("type: int16", "type: int17").replace("poll_interval: 5s", "poll_interval: -5s")
    text = text.replace("port: 5020", "port: 0").replace("metric: co,", "metric: carbon,")
    good_config(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env={})
    paths = [issue.path for issue in caught.value.issues]
    assert paths == [
        "poll_interval",
        "devices[0].port",
        "devices[1].registers[0].type",
        "devices[1].registers[1].metric",
    ]
    message = str(caught.value)
    assert message.startswith(f"4 configuration error(s) in {tmp_path / 'gateway.yaml'}:")
    assert "gateway.yaml:17:67: devices[1].registers[0].type: must be one of 'uint16', 'int16'," in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*nope\.yaml"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_config_case(case: str) -> None:
    """cases/<name>/config.yaml fails with exactly the errors in cases/<name>/expected_error.txt."""
    folder = CASES / case
    expected = (folder / "expected_error.txt").read_text(encoding="utf-8").splitlines()
    with pytest.raises(ConfigError) as caught:
        load_settings(folder / "config.yaml", env={})
    assert [issue.render("config.yaml") for issue in caught.value.issues] == expected


def test_sample_config_loads(tmp_path: Path) -> None:
    """The documented sample is a valid config (the files it names are created next to a copy of it)."""
    config = tmp_path / "gateway.yaml"
    config.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "broker-password").write_text("sample-password\n", encoding="utf-8")
    settings = load_settings(config, env={})
    assert settings.broker.resolved_password() == "sample-password"
    assert settings.broker.use_tls
    assert settings.broker.tls is None
    assert [d.id for d in settings.devices] == [
        "aq-kherson-001",
        "nm-kherson-001",
        "weather-kherson-001",
        "aq-kherson-002",
        "pb-kherson-001",
        "pump-kherson-001",
        "nm-kherson-002",
        "pm-kherson-001",
        "noise-kherson-003",
        "cam-kherson-001",
    ]
    assert [getattr(d, "profile", None) for d in settings.devices] == [
        "aq1",
        "nm1",
        None,
        "aq1",
        "pb1",
        None,
        "nm1",
        None,
        None,
        None,
    ]
    assert settings.register_count() == 8 + 3 + 3 + 8 + 10 + 3 + 3 + 2 + 2 + 3


def test_sample_documents_every_setting() -> None:
    """Every key of the settings models appears in the sample, so the reference cannot miss one."""
    sample = SAMPLE.read_text(encoding="utf-8")
    from misto.edge.device_config import DEVICE_MODELS, SerialLine
    from misto.edge.device_config.report import Deadband, MetricReport, ReportSettings
    from misto.edge.registers.rows import RegisterRow
    from misto.edge.settings import BrokerSettings, BufferSettings, TlsSettings

    models: list[type] = [Settings, BrokerSettings, TlsSettings, BufferSettings, RegisterRow, SerialLine]
    models += [ReportSettings, Deadband, MetricReport]
    models += DEVICE_MODELS
    missing = [f"{m.__name__}.{key}" for m in models for key in m.model_fields if f"{key}:" not in sample]  # type: ignore[attr-defined]
    assert missing == []


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(5, 5.0), (2.5, 2.5), ("5", 5.0), ("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("1h", 3600.0), ("1m30s", 90.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", [0, -1, "0s", "-5s", "5x", "", "s", True, None, float("inf"), "nan", [5]])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="must be a positive duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        ((), "(top level)"),
        (("devices", 1, "registers", 0, "type"), "devices[1].registers[0].type"),
        (("a", "b"), "a.b"),
    ],
)
def test_format_loc(loc: tuple[int | str, ...], path: str) -> None:
    assert format_loc(loc) == path


# The brief's register tables, verbatim: (addr, words, metric, type, word order, scale, unit).
AQ1 = [
    (0, 1, "pm25", "uint16", "-", 0.1, "ug/m3"),
    (1, 1, "pm10", "uint16", "-", 0.1, "ug/m3"),
    (2, 2, "no2", "float32", "big", 1, "ug/m3"),
    (4, 2, "o3", "float32", "big", 1, "ug/m3"),
    (6, 2, "co", "float32", "little", 1, "mg/m3"),
    (8, 1, "temperature", "int16", "-", 0.01, "Cel"),
    (9, 1, "relativeHumidity", "uint16", "-", 0.0001, "1"),
    (10, 2, "atmosphericPressure", "uint32", "big", 0.01, "hPa"),
]
NM1 = [
    (0, 2, "LAeq", "float32", "little", 1, "dB(A)"),
    (2, 1, "LAmax", "uint16", "-", 0.1, "dB(A)"),
    (3, 2, "temperature", "int32", "big", 0.001, "Cel"),
]


@pytest.mark.parametrize(("name", "table", "rows"), [("aq1", Table.INPUT, AQ1), ("nm1", Table.HOLDING, NM1)])
def test_builtin_profiles_match_the_shared_register_maps(name: str, table: Table, rows: list[tuple]) -> None:
    specs = builtin_profiles()[name].specs()
    got = [
        (s.address, s.words, s.metric, str(s.type), str(s.word_order) if s.words > 1 else "-", s.scale, s.unit)
        for s in specs
    ]
    assert got == rows
    assert {s.table for s in specs} == {table}
    assert {s.byte_order for s in specs} == {Order.BIG}
    assert {s.offset for s in specs} == {0.0}
