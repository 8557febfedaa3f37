"""The edge bench's own checks: its arithmetic and decoders on known data, and one short real run
of the agent (simulators, Mosquitto, subscriber, agent) that must deliver every poll."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from bench.edge import misto_gateway, thingsboard
from bench.edge.capture import Arrival
from bench.edge.figures import Result, percentile, table
from bench.edge.model import BenchError, Device, Point, Sample
from bench.edge.simulators import ReadCounts

ROOT = Path(__file__).resolve().parents[3]
PM25 = Point("pm25", "ug/m3", "input", 4, 0, 1, "uint16", "big", 0.1)
NO2 = Point("no2", "ug/m3", "input", 4, 2, 2, "float32", "big", 1.0)
CO = Point("co", "mg/m3", "input", 4, 6, 2, "float32", "little", 1.0)
RH = Point("relativeHumidity", "1", "input", 4, 9, 1, "uint16", "big", 0.0001)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_read_counts_count_samples_per_point_and_polls_by_the_first_point() -> None:
    # device A: 10 reads of registers 0..3 (both points); device B: 10 of register 0 and 9 of 2..3
    counts = ReadCounts({1: {0: 10, 1: 10, 2: 10, 3: 10}, 2: {0: 10, 2: 9, 3: 9}}, at=100.0)
    assert counts.samples([PM25, NO2]) == 39
    assert counts.polls([PM25, NO2]) == 20
    earlier = ReadCounts({1: {0: 4, 2: 4}, 2: {0: 5}}, at=90.0)
    assert counts.minus(earlier).samples([PM25, NO2]) == 39 - 8 - 5


def test_thingsboard_payload_decodes_to_one_sample_per_value() -> None:
    payload = json.dumps(
        {"dev-1": [{"ts": 1700000000123, "values": {"pm25": 1.5, "no2": 20.0}}, {"ts": 1700000000223, "values": {}}]}
    ).encode()
    samples = thingsboard.decode(Arrival(1700000000.2, thingsboard.TOPIC, payload))
    assert samples == [Sample("dev-1", "pm25", 1700000000.123), Sample("dev-1", "no2", 1700000000.123)]
    with pytest.raises(ValueError, match="not a JSON object"):
        thingsboard.decode(Arrival(0.0, thingsboard.TOPIC, b"[1]"))


def test_thingsboard_connector_config_uses_divider_and_its_one_word_order(tmp_path: Path) -> None:
    thingsboard.write_config(
        tmp_path,
        broker_port=1883,
        username="tb",
        password="pw",
        devices=[Device("dev-1", 5020)],
        points=[PM25, NO2, CO, RH],
        interval=0.1,
    )
    slave = json.loads((tmp_path / "modbus.json").read_text())["master"]["slaves"][0]
    assert slave["pollPeriod"] == 100
    entries = {e["tag"]: e for e in slave["timeseries"]}
    pm25 = {"tag": "pm25", "type": "16uint", "functionCode": 4, "objectsCount": 1, "address": 0, "divider": 10}
    assert entries["pm25"] == pm25
    assert entries["relativeHumidity"]["divider"] == 10000
    assert "divider" not in entries["no2"]
    assert "multiplier" not in entries["no2"]
    assert thingsboard.word_order_mismatches([PM25, NO2, CO, RH]) == ["co"]
    main = json.loads((tmp_path / "tb_gateway.json").read_text())["thingsboard"]
    assert (main["port"], main["security"]["username"], main["remoteConfiguration"]) == (1883, "tb", False)


def test_misto_overrides_set_dotted_keys_and_refuse_malformed_ones() -> None:
    config: dict[str, object] = {"buffer": {"kind": "sqlite"}}
    misto_gateway.apply_override(config, "buffer.kind=memory")
    misto_gateway.apply_override(config, "broker.max_inflight=50")
    assert config == {"buffer": {"kind": "memory"}, "broker": {"max_inflight": 50}}
    for bad in ("buffer.kind", "=x", "buffer..kind=x", "buffer.kind.x=1"):
        with pytest.raises(BenchError, match="--misto-set"):
            misto_gateway.apply_override(config, bad)


def test_table_marks_targets_met_and_missed() -> None:
    good = Result("agent", window_s=10, cpu_s=0.1, points=3000, rss_peak_bytes=40 * 2**20)
    good.latencies_s = [0.001] * 99 + [0.01]
    good.samples_read, good.polls_read, good.samples_delivered, good.polls_delivered = 60, 10, 60, 10
    bad = Result("peer", window_s=10, cpu_s=1.0, points=3000, rss_peak_bytes=60 * 2**20)
    bad.latencies_s = [0.1] * 100
    bad.samples_read, bad.polls_read, bad.samples_delivered, bad.polls_delivered = 60, 10, 54, 9
    rows = {line.split("|")[1].strip(): line for line in table([good, bad]).splitlines()}
    assert "30,000 met" in rows["points per CPU-second"]
    assert "3,000 MISSED" in rows["points per CPU-second"]
    assert "10 of 10 met" in rows["polls delivered with own read time"]
    assert "9 of 10 MISSED" in rows["polls delivered with own read time"]
    assert "40.0 met" in rows["RSS peak, MB"]
    assert "60.0 MISSED" in rows["RSS peak, MB"]


@pytest.mark.slow
@pytest.mark.e2e
def test_a_short_run_of_the_agent_delivers_every_poll_with_its_own_read_time() -> None:
    options = "--devices 3 --points 3 --interval 0.1 --seconds 2 --warmup 0.5 --startup-timeout 30 --drain 10"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "edge" / "run.py"), *options.split(), "--sim-processes", "1"],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("|")}
    assert "met" in rows["polls delivered with own read time"], done.stdout
    delivered = int(rows["samples delivered, distinct"].split("|")[2].replace(",", ""))
    assert delivered >= 3 * 3 * 20  # at least 2 s of polls of 3 devices x 3 points
    assert rows["undecodable messages"].split("|")[2].strip() == "0"
