"""The register maps: exactly the shared maps of the brief, consistent with the protocol
vocabulary, and checked on construction."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from misto.protocol.vocabulary import METRICS
from misto.sim.device import SimulatedDevice
from misto.sim.devices import MODELS, DeviceModel, RegisterTable, RegisterType, SimRegister, WordOrder, get_model
from misto.sim.errors import ModelError, UnknownModelError
from misto.sim.signals import KYIV, Daily, Offset, Ratio

# (address, words, metric, type, word order or None for one word, scale, unit) as the brief lists them.
EXPECTED = {
    "aq1": (
        RegisterTable.INPUT,
        [
            (0, 1, "pm25", "uint16", None, 0.1, "ug/m3"),
            (1, 1, "pm10", "uint16", None, 0.1, "ug/m3"),
            (2, 2, "no2", "float32", "big", 1, "ug/m3"),
            (4, 2, "o3", "float32", "big", 1, "ug/m3"),
            (6, 2, "co", "float32", "little", 1, "mg/m3"),
            (8, 1, "temperature", "int16", None, 0.01, "Cel"),
            (9, 1, "relativeHumidity", "uint16", None, 0.0001, "1"),
            (10, 2, "atmosphericPressure", "uint32", "big", 0.01, "hPa"),
        ],
    ),
    "nm1": (
        RegisterTable.HOLDING,
        [
            (0, 2, "LAeq", "float32", "little", 1, "dB(A)"),
            (2, 1, "LAmax", "uint16", None, 0.1, "dB(A)"),
            (3, 2, "temperature", "int32", "big", 0.001, "Cel"),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_register_map_is_the_shared_one(name: str) -> None:
    table, rows = EXPECTED[name]
    model = MODELS[name]
    actual = [
        (r.address, r.words, r.metric, str(r.type), str(r.word_order) if r.words > 1 else None, r.scale, r.unit)
        for r in model.registers
    ]
    assert actual == rows
    assert {r.table for r in model.registers} == {table}


def test_titles() -> None:
    assert MODELS["aq1"].title == "Misto AQ-1 air-quality station"
    assert MODELS["nm1"].title == "Misto NM-1 noise meter"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_register_fits_the_vocabulary(name: str) -> None:
    """Metric known, unit the vocabulary's, sensor range inside the metric's physical range."""
    for reg in MODELS[name].registers:
        metric = METRICS.get(reg.metric)
        assert metric is not None, f"{name}.{reg.metric} is not in the vocabulary"
        assert reg.unit == metric.unit, f"{name}.{reg.metric}: unit {reg.unit!r}, vocabulary says {metric.unit!r}"
        assert metric.minimum <= reg.signal.floor <= reg.signal.ceiling <= metric.maximum, (
            f"{name}.{reg.metric}: sensor range [{reg.signal.floor}, {reg.signal.ceiling}] "
            f"outside [{metric.minimum}, {metric.maximum}]"
        )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_decoded_value_over_a_year_is_in_the_physical_range(name: str) -> None:
    """Sweep a year (every 97 minutes, several seeds) and check what a decoder would read."""
    model = MODELS[name]
    by_key = {reg.key: reg for reg in model.registers}
    start = datetime(2025, 1, 1, tzinfo=KYIV)
    for seed in range(3):
        device = SimulatedDevice(model, seed=seed, key=name)
        days = 7 if name == "tb1" else 365  # the test bench holds constants: a week shows it
        for step in range(0, days * 24 * 60, 97):
            snapshot = device.update(start + timedelta(minutes=step))
            for key, value in snapshot.values.items():
                reg = by_key[key]
                assert METRICS[reg.metric].in_range(value), f"{name}.{key}={value} at {snapshot.at}"
                assert reg.signal.floor - reg.scale <= value <= reg.signal.ceiling + reg.scale
        assert not device.clamps


def test_get_model_names_the_known_models() -> None:
    assert get_model("aq1") is MODELS["aq1"]
    with pytest.raises(UnknownModelError, match=r"'aq9'.*aq1, nm1, pb1, tb1, tc1, wb1"):
        get_model("aq9")


def _reg(metric: str, address: int, **kw: object) -> SimRegister:
    fields: dict[str, object] = {
        "metric": metric,
        "unit": METRICS[metric].unit if metric in METRICS else "1",
        "table": RegisterTable.INPUT,
        "address": address,
        "type": RegisterType.UINT16,
        "scale": 0.1,
        "signal": Daily(base=10.0, floor=0.0, ceiling=100.0),
    }
    fields.update(kw)
    return SimRegister(**fields)  # type: ignore[arg-type]


ANY_RATIO = {"low": 1.0, "high": 2.0, "floor": 0.0, "ceiling": 9.0}


def test_a_broken_model_reports_every_problem_with_its_path() -> None:
    with pytest.raises(ModelError) as caught:
        DeviceModel(
            id="bad",
            title="Broken",
            registers=(
                _reg("pm25", 0, type=RegisterType.FLOAT32, word_order=WordOrder.LITTLE),
                _reg("pm10", 1),  # overlaps pm25's second word
                _reg("noSuchMetric", 2),
                _reg("no2", 3, unit="mg/m3"),
                _reg("o3", 0xFFFF, type=RegisterType.UINT32),
                _reg("co", 5, scale=0.0),
                _reg("LAeq", 6, signal=Daily(base=1.0, floor=0.0, ceiling=7000.0)),  # 7000 > 6553.5
                _reg("LAmax", 7, signal=Offset(of="LAmin", low=8, high=20, floor=0, ceiling=100)),
                _reg("temperature", 8, type=RegisterType.INT16, signal=Ratio(of="rssi", **ANY_RATIO)),
                _reg("rssi", 9, type=RegisterType.INT16, signal=Ratio(of="temperature", **ANY_RATIO)),
                _reg("pm25", 20),
            ),
        )
    problems = caught.value.problems
    expected = [
        "bad.registers[1].address: input register 1 is already used by registers[0]",
        "bad.registers[2].metric: 'noSuchMetric' is not in the protocol vocabulary",
        "bad.registers[3].unit: metric 'no2' is measured in 'ug/m3', not 'mg/m3'",
        "bad.registers[4].address: 65535 does not leave room for 2 register(s) in 0..65535",
        "bad.registers[5].scale: must be positive, got 0.0",
        "bad.registers[6].signal: range [0, 7000] does not fit uint16 with scale 0.1 ([0, 6553.5])",
        "bad.registers[7].signal: computed from 'LAmin', which this device does not have",
        "bad.registers[8].signal: inputs form a cycle temperature -> rssi -> temperature",
        "bad.registers[9].signal: inputs form a cycle rssi -> temperature -> rssi",
        "bad.registers[10].metric: 'pm25' is already at registers[0]",
    ]
    for line in expected:
        assert line in problems
    assert len(problems) == len(expected)
    assert "device model 'bad' is invalid" in str(caught.value)


def test_same_address_in_different_tables_is_fine() -> None:
    model = DeviceModel(
        id="two-tables",
        title="Two tables",
        registers=(_reg("pm25", 0), _reg("pm10", 0, table=RegisterTable.HOLDING)),
    )
    assert model.tables == (RegisterTable.INPUT, RegisterTable.HOLDING)


def test_evaluation_order_puts_inputs_first() -> None:
    model = DeviceModel(
        id="order",
        title="Order",
        registers=(
            _reg("pm10", 0, signal=Ratio(of="pm25", low=1.5, high=1.8, floor=0, ceiling=1000)),
            _reg("pm25", 1),
        ),
    )
    assert [r.metric for r in model.evaluation_order()] == ["pm25", "pm10"]
