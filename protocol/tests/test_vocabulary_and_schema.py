from __future__ import annotations

import pytest

from misto.protocol import schema, vocabulary


def test_check_reading() -> None:
    assert vocabulary.check_reading("pm25", "ug/m3", 12.0) is None
    assert vocabulary.check_reading("pm2.5", "ug/m3", 1.0) == "unknown metric 'pm2.5'"
    assert "has unit 'ug/m3', not 'mg/m3'" in (vocabulary.check_reading("pm25", "mg/m3", 1.0) or "")
    assert "outside the physical range" in (vocabulary.check_reading("relativeHumidity", "1", 81.0) or "")


def test_lookup_names_known_metrics() -> None:
    with pytest.raises(KeyError, match=r"known metrics: .*pm25"):
        vocabulary.lookup("pm2.5")


def test_fiware_names_are_present() -> None:
    required = {"pm25", "pm10", "no2", "o3", "co", "temperature", "relativeHumidity", "LAeq", "LAmax",
                "intensity", "averageVehicleSpeed", "occupancy", "occupied", "fillingLevel"}  # fmt: skip
    assert required <= set(vocabulary.METRICS)
    for metric in vocabulary.METRICS.values():
        assert metric.minimum < metric.maximum, metric.name


@pytest.mark.parametrize("name", list(schema.MESSAGES))
def test_shipped_schema_matches_the_message_types(name: str) -> None:
    assert schema.shipped(name) == schema.render(name), "run `make schema` to regenerate"
