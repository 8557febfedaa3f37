"""The city scenario generator: its layout, its messages (valid on the wire and in the
vocabulary), its determinism, and the faults it plays (dropouts, poll failures, link outages with
store-and-forward) with the counters a real gateway would report."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from misto.protocol import (
    MAX_PAYLOAD_BYTES,
    DeviceState,
    GatewayState,
    Health,
    Status,
    Telemetry,
    decode,
    decode_telemetry,
    encode,
)
from misto.protocol.vocabulary import check_reading
from misto.sim.city import CAMERA, City, CitySpec, CitySpecError, layout
from misto.sim.city.spec import apportion
from misto.sim.cli import app
from misto.sim.devices.pb1 import BAYS

START = datetime(2025, 6, 4, 5, 0, tzinfo=UTC)  # a Wednesday, 08:00 in Kyiv


def run(spec: CitySpec, hours: float) -> list[tuple[str, Telemetry | Health | Status]]:
    city = City(spec, start=START)
    return list(city.messages(START + timedelta(hours=hours)))


def test_layout_spreads_every_city_model_over_every_gateway() -> None:
    spec = CitySpec(gateways=10, devices=200, seed=3)
    gateways = layout(spec)
    assert [gw.id for gw in gateways] == [f"gw-{n:03d}" for n in range(1, 11)]
    assert all(len(gw.devices) == 20 for gw in gateways)
    devices = [dev for gw in gateways for dev in gw.devices]
    assert len({dev.id for dev in devices}) == 200
    assert Counter(dev.model for dev in devices) == {"aq1": 40, "nm1": 30, "tc1": 30, "pb1": 20, "wb1": 60, CAMERA: 20}
    assert "tb1" not in {dev.model for dev in devices}  # the Modbus test bench is not a street sensor
    assert all(len({dev.model for dev in gw.devices}) >= 4 for gw in gateways)


def test_a_small_city_still_has_every_kind() -> None:
    assert all(n >= 1 for n in apportion(6, CitySpec().mix).values())


def test_every_message_is_valid_on_the_wire_and_in_the_vocabulary() -> None:
    messages = run(CitySpec(gateways=4, devices=60, seed=5, max_readings=100), hours=2)
    kinds = Counter(type(m).__name__ for _, m in messages)
    assert kinds["Telemetry"] >= 4 * 24
    assert kinds["Health"] == 4 * 24
    assert kinds["Status"] >= 4
    metrics_seen: set[str] = set()
    for topic, message in messages:
        payload = encode(message)
        assert len(payload) <= MAX_PAYLOAD_BYTES
        assert topic.startswith(f"misto/v1/{message.gateway}/")
        if isinstance(message, Telemetry):
            assert decode_telemetry(payload, topic=topic) == message
            assert 1 <= len(message.readings) <= 100
            for reading in message.readings:
                assert check_reading(reading.metric, reading.unit, reading.value) is None, reading
                metrics_seen.add(reading.metric)
        elif isinstance(message, Health):
            assert decode(payload, Health, topic=topic) == message
        else:
            assert decode(payload, Status, topic=topic) == message
    assert {
        "pm25",
        "LAeq",
        "intensity",
        "occupied",
        "availableSpotNumber",
        "fillingLevel",
        "peopleCount",
    } <= metrics_seen


def test_parking_bays_are_sub_devices_of_their_controller() -> None:
    city = City(CitySpec(gateways=1, devices=12, seed=1, poll_failure_rate=0.0, dropouts_per_day=0.0), start=START)
    tick = city.tick()
    controller = next(dev.id for dev in city.devices if dev.model == "pb1")
    devices = {r.device for m in tick.telemetry for r in m.readings}
    assert {f"{controller}.bay{n}" for n in range(1, BAYS + 1)} <= devices
    assert controller in devices


def test_same_spec_and_start_give_the_same_bytes() -> None:
    spec = CitySpec(gateways=3, devices=30, seed=9, outages_per_day=20.0)
    first = [encode(m) for _, m in run(spec, hours=3)]
    assert first == [encode(m) for _, m in run(spec, hours=3)]
    other = [encode(m) for _, m in run(CitySpec(gateways=3, devices=30, seed=10, outages_per_day=20.0), hours=3)]
    assert first != other


def test_an_outage_buffers_then_delivers_everything_once_in_order() -> None:
    spec = CitySpec(gateways=4, devices=40, seed=2, outages_per_day=24.0, poll_interval_s=60.0)
    messages = run(spec, hours=6)
    statuses = [m for _, m in messages if isinstance(m, Status)]
    offline = [s for s in statuses if s.state is GatewayState.OFFLINE]
    assert offline, "an outage rate of one an hour per gateway makes outages in 6 h"
    seqs: dict[str, list[int]] = defaultdict(list)
    for _, message in messages:
        if isinstance(message, Telemetry):
            seqs[message.gateway].append(message.seq)
    healths = [m for _, m in messages if isinstance(m, Health)]
    for gateway, delivered in seqs.items():
        last = [h for h in healths if h.gateway == gateway][-1]
        # nothing lost, nothing doubled: delivered + still buffered == every seq made, in order
        assert delivered == list(range(len(delivered)))
        assert last.buffer.added == len(delivered) + last.buffer.depth
    during = [h for h in healths if not h.link.connected]
    assert during
    assert all(h.buffer.depth > 0 and h.buffer.oldest_age_s is not None for h in during)
    for h in healths:
        b = h.buffer
        assert b.recovered + b.added == b.sent + b.rejected + b.dropped + b.depth
        assert h.link.disconnects <= h.link.connects


def test_device_counters_match_what_was_sent() -> None:
    spec = CitySpec(gateways=2, devices=30, seed=6, poll_failure_rate=0.05, dropouts_per_day=5.0, outages_per_day=0.0)
    messages = run(spec, hours=4)
    ticks = 4 * 12
    sent: Counter[str] = Counter()
    for _, message in messages:
        if isinstance(message, Telemetry):
            for reading in message.readings:
                sent[reading.device.split(".")[0]] += 1
    last_health = {m.gateway: m for _, m in messages if isinstance(m, Health)}
    states: Counter[DeviceState] = Counter()
    failures = 0
    for health in last_health.values():
        for device in health.devices:
            assert device.polls == ticks
            assert device.readings == sent[device.device]
            failures += device.failures
            assert device.failures == sum(device.errors.values())
            states[device.state] += 1
    assert failures > 0
    assert states[DeviceState.AVAILABLE] > 0


def test_spec_errors_are_all_listed() -> None:
    with pytest.raises(CitySpecError) as caught:
        CitySpec(gateways=0, devices=0, poll_interval_s=0.5, mix=(("xx1", 1.0), ("aq1", 0.0)), poll_failure_rate=1.0)
    text = str(caught.value)
    for expected in (
        "gateways:",
        "devices:",
        "poll_interval_s:",
        "mix[0]: unknown model 'xx1'",
        "mix[1]:",
        "poll_failure_rate:",
    ):
        assert expected in text
    with pytest.raises(CitySpecError, match="per gateway"):
        CitySpec(gateways=1, devices=501)


def test_start_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        City(CitySpec(), start=datetime(2025, 6, 4))


def test_cli_writes_ndjson_of_wire_payloads(tmp_path: Path) -> None:
    out = tmp_path / "city.ndjson"
    args = ["city", "--gateways", "2", "--devices", "10", "--hours", "0.5", "--start", "2025-06-04T05:00:00+00:00"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 gateways, 10 devices" in result.output
    lines = out.read_text().splitlines()
    first = json.loads(lines[0])
    assert first["topic"] == "misto/v1/gw-001/status"
    telemetry = [json.loads(line) for line in lines if line.startswith('{"topic":"misto/v1/gw-001/telemetry"')]
    assert telemetry
    decoded = decode_telemetry(json.dumps(telemetry[0]["payload"]).encode())
    assert decoded.gateway == "gw-001"
    bad = CliRunner().invoke(app, ["city", "--gateways", "1", "--devices", "600"])
    assert bad.exit_code == 2
    assert "per gateway" in bad.output
