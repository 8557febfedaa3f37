"""Config cases as data (``tests/cases/<name>/``, see its README): each case's configuration is
loaded by the real settings model, its devices are read (and written) by the real drivers, against
the real simulator started for the case, and the readings or errors must be exactly the expected."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from misto.edge.clock import SystemClock
from misto.edge.config_errors import parse_yaml
from misto.edge.drivers import create_driver
from misto.edge.drivers.modbus.driver import ModbusDriver
from misto.edge.errors import ConfigError
from misto.edge.settings import Settings, settings_from_data
from tests.fixtures.misto_sim import SimProcess, start_simulator
from tests.fixtures.net import free_port

CASES = Path(__file__).parent / "cases"
PLACEHOLDER = re.compile(r"\$\{(port|bus):([A-Za-z0-9_-]+)\}")


@dataclass
class Placeholders:
    """``${port:NAME}`` -> a free TCP port, ``${bus:NAME}`` -> a pty path; the same NAME, the same value."""

    folder: Path
    values: dict[str, str] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        def value(m: re.Match[str]) -> str:
            key = f"{m[1]}:{m[2]}"
            if key not in self.values:
                self.values[key] = str(free_port()) if m[1] == "port" else str(self.folder / f"tty-{m[2]}")
            return self.values[key]

        return PLACEHOLDER.sub(value, text)


def cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "config.yaml").exists())


def load(folder: Path, fill: Placeholders) -> Settings:
    text = fill((folder / "config.yaml").read_text(encoding="utf-8"))
    document = parse_yaml(text, source="config.yaml")
    return settings_from_data(document.data, source="config.yaml", locate=document.locate, base_dir=folder, env={})


@pytest.fixture
def simulators() -> Iterator[list[SimProcess]]:
    started: list[SimProcess] = []
    yield started
    for sim in started:
        sim.stop()


@pytest.mark.parametrize("name", cases())
async def test_case(name: str, tmp_path: Path, simulators: list[SimProcess]) -> None:
    folder = CASES / name
    fill = Placeholders(tmp_path)
    if (folder / "expected_error.txt").exists():
        expected_errors = (folder / "expected_error.txt").read_text(encoding="utf-8").splitlines()
        with pytest.raises(ConfigError) as caught:
            load(folder, fill)
        assert [issue.render("config.yaml") for issue in caught.value.issues] == expected_errors
        return
    served = yaml.safe_load(fill((folder / "simulator.yaml").read_text(encoding="utf-8")))
    expected = yaml.safe_load((folder / "expected_readings.yaml").read_text(encoding="utf-8"))
    settings = load(folder, fill)  # before the simulator: a config error fails fast
    sim = start_simulator(tmp_path / "sim", served["devices"], faults=served.get("faults", ()))
    simulators.append(sim)
    drivers = {d.id: create_driver(d, clock=SystemClock()) for d in settings.devices}
    assert all(isinstance(d, ModbusDriver) for d in drivers.values())
    modbus: dict[str, ModbusDriver] = drivers  # type: ignore[assignment]
    try:
        for driver in modbus.values():
            await driver.start()
        for write in expected.get("writes", ()):
            words = await modbus[write["device"]].write(write["target"], write["value"])
            assert words == write["words"], f"{write}: wrote {[f'0x{w:04X}' for w in words]}"
        batches = await asyncio.gather(*(driver.read() for driver in modbus.values()))
    finally:
        for driver in modbus.values():
            await driver.close()
    readings = [r for batch in batches for r in batch]
    got = {(r.device, r.metric): (r.value, r.unit) for r in readings}
    assert len(got) == len(readings), "two readings of one device and metric"
    if "readings" in expected:
        want = {(r["device"], r["metric"]): (float(r["value"]), r["unit"]) for r in expected["readings"]}
        assert set(got) == set(want)
        for key, (value, unit) in want.items():
            assert got[key][1] == unit, key
            assert got[key][0] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    for device_id, index in expected.get("simulator_values", {}).items():
        values = sim.values(index)
        mine = {_key(device_id, r.device, r.metric): r.value for r in readings if r.device.split(".")[0] == device_id}
        assert mine == pytest.approx(values, rel=1e-9, abs=1e-12), device_id
    for device_id, texts in expected.get("attributes", {}).items():
        assert modbus[device_id].attributes == {k: str(v) for k, v in texts.items()}
    for driver in modbus.values():
        counters = driver.counters
        assert counters.timeouts == counters.crc_errors == counters.exception_responses == 0, driver.device_id
    assert sim.process.alive(), sim.process.log_text()


def _key(device_id: str, device: str, metric: str) -> str:
    """The simulator's row key for a reading: ``metric``, or ``subdevice/metric``."""
    return metric if device == device_id else f"{device.removeprefix(device_id + '.')}/{metric}"


def test_every_case_is_complete() -> None:
    for name in cases():
        files = {p.name for p in (CASES / name).iterdir()}
        if "expected_error.txt" in files:
            assert "simulator.yaml" not in files, name
        else:
            assert {"simulator.yaml", "expected_readings.yaml"} <= files, name
