"""Raw serial sensors: the SDS011 frame parser and the ASCII line parser on their own, then the
``sds011`` and ``ascii_lines`` drivers against the real simulator (``misto-sim serial``) on
pseudo-terminals: values decoded exactly, faults injected through its control endpoint counted
exactly and resynchronised, silence and a vanished port reported as the right errors."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from misto.edge.clock import SystemClock
from misto.edge.device_config import AsciiLinesDevice
from misto.edge.drivers import create_driver, driver_class
from misto.edge.drivers.serial_line.ascii_lines import LineParser
from misto.edge.drivers.serial_line.driver import AsciiLinesDriver, Sample, Sds011Driver, aggregate
from misto.edge.drivers.serial_line.sds011 import Sds011Parser, encode_frame
from misto.edge.errors import ConfigError, DeviceConnectionError, DeviceTimeout
from misto.edge.settings import settings_from_data
from tests.fixtures.net import LOOPBACK, free_port, port_open
from tests.fixtures.processes import ManagedProcess

SAMPLE = Path(__file__).parents[1] / "src" / "misto" / "edge" / "drivers" / "serial_line" / "sample.yaml"
NOISE_PATTERN = r"LAeq=(?P<LAeq>\d+(?:\.\d+)?) LAmax=(?P<LAmax>\d+(?:\.\d+)?) dB\(A\)"
DEADLINE = 20.0


def device(**fields: Any) -> Any:
    settings = settings_from_data(
        {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}, "devices": [fields]}, env={}
    )
    return settings.devices[0]


# ---------------------------------------------------------------------------------------------
# The SDS011 parser
# ---------------------------------------------------------------------------------------------


def test_frame_layout_and_decoding() -> None:
    frame = encode_frame(123, 4567, sensor_id=0xBEEF)
    assert frame[:2] == b"\xaa\xc0"
    assert frame[-1] == 0xAB
    assert len(frame) == 10
    assert frame[2:6] == bytes([123, 0, 4567 & 0xFF, 4567 >> 8])  # little-endian tenths
    assert frame[8] == sum(frame[2:8]) % 256
    (decoded,) = Sds011Parser().feed(frame, 0.0)
    assert (decoded.pm25, decoded.pm10, decoded.sensor_id) == (12.3, 456.7, 0xBEEF)


def test_resynchronises_after_garbage_bad_checksums_and_short_frames() -> None:
    parser = Sds011Parser()
    good = encode_frame(100, 200)
    bad = bytearray(encode_frame(101, 201))
    bad[8] ^= 0xFF
    stream = b"\x01\x02\x03" + good + bytes(bad) + b"\xaa\x11" + good[:6] + good + b"\xaa\xc5" + bytes(5)
    frames = [f for b in stream for f in parser.feed(bytes([b]), 0.0)]  # one byte at a time
    assert [f.pm25 for f in frames] == [10.0, 10.0]
    c = parser.counters
    # 3 noise bytes + the 0xAA 0x11 pair; one bad checksum; one frame cut short by the next header.
    assert (c.frames, c.garbage_bytes, c.bad_checksum, c.short_frames) == (2, 5, 1, 1)
    assert c.replies == 0  # the reply at the end is not complete yet: kept, not counted


def test_a_frame_cut_short_then_silence_is_a_short_frame() -> None:
    parser = Sds011Parser(gap=0.5)
    frame = encode_frame(55, 66)
    assert parser.feed(frame[:7], at=10.0) == []
    (decoded,) = parser.feed(frame, at=11.0)  # a second later: the half frame is given up
    assert decoded.pm25 == 5.5
    assert (parser.counters.short_frames, parser.counters.garbage_bytes) == (1, 0)


def test_reply_frames_are_counted_not_returned() -> None:
    reply = bytearray(encode_frame(1, 2))
    reply[1] = 0xC5
    parser = Sds011Parser()
    assert parser.feed(bytes(reply), 0.0) == []
    assert (parser.counters.replies, parser.counters.errors()) == (1, 0)


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=12).map(lambda b: b.replace(b"\xaa", b"")),  # garbage without the header byte
            st.integers(0, 9999),
            st.integers(0, 9999),
            st.integers(1, 40),
        ),
        max_size=12,
    )
)
def test_every_intact_frame_is_found_whatever_garbage_surrounds_it(parts: list[tuple[bytes, int, int, int]]) -> None:
    stream = b"".join(garbage + encode_frame(pm25, pm10) for garbage, pm25, pm10, _ in parts)
    parser = Sds011Parser()
    frames = []
    position = 0
    for _, _, _, chunk in parts:  # arbitrary chunking, as reads deliver bytes
        frames += parser.feed(stream[position : position + chunk], 0.0)
        position += chunk
    frames += parser.feed(stream[position:], 0.0)
    assert [(f.pm25, f.pm10) for f in frames] == [(a / 10, b / 10) for _, a, b, _ in parts]
    assert parser.counters.garbage_bytes == sum(len(g) for g, *_ in parts)
    assert parser.counters.bad_checksum == parser.counters.short_frames == 0


# ---------------------------------------------------------------------------------------------
# The ASCII line parser and its settings
# ---------------------------------------------------------------------------------------------


def line_parser(pattern: str = NOISE_PATTERN, max_length: int = 64, **fields: Any) -> LineParser:
    config = device(id="n-1", driver="ascii_lines", serial={"port": "/dev/null"}, pattern=pattern, **fields)
    assert isinstance(config, AsciiLinesDevice)
    return LineParser(pattern=config.pattern, fields=config.line_fields(), max_length=max_length)


def test_lines_end_with_cr_lf_or_both() -> None:
    parser = line_parser()
    data = b"LAeq=63.4 LAmax=71.2 dB(A)\r\nLAeq=60 LAmax=70 dB(A)\nLAeq=1.5 LAmax=2.5 dB(A)\r"
    assert parser.feed(data, 0.0) == [
        {"LAeq": 63.4, "LAmax": 71.2},
        {"LAeq": 60.0, "LAmax": 70.0},
        {"LAeq": 1.5, "LAmax": 2.5},
    ]
    assert parser.counters.lines == 3
    assert parser.counters.errors() == 0


def test_bad_lines_are_counted_by_kind() -> None:
    parser = line_parser(max_length=40)
    data = (
        b"LAeq:63.4 LAmax=71.2 dB(A)\r\n"  # malformed
        b"\xff\xfeLAeq=63.4 LAmax=71.2 dB(A)\r\n"  # not ASCII
        + b"x" * 50
        + b"\r\n"  # too long
        + b"LAeq=63.4 LAmax=71.2 dB(A)\r\n"  # good
    )
    assert parser.feed(data, 0.0) == [{"LAeq": 63.4, "LAmax": 71.2}]
    c = parser.counters
    assert (c.malformed, c.undecodable, c.too_long, c.truncated, c.lines) == (1, 1, 1, 0, 1)
    assert parser.feed(b"LAeq=6", 1.0) == []
    assert parser.feed(b"LAeq=61.0 LAmax=70.0 dB(A)\r\n", 2.0) == [{"LAeq": 61.0, "LAmax": 70.0}]
    assert c.truncated == 1  # the half line was given up after the gap


def test_fields_map_groups_to_metrics_with_scale_and_offset() -> None:
    parser = line_parser(
        pattern=r"L(?P<leq>\d+),(?P<lmax>\d+)(?:,T(?P<t>-?\d+))?",
        fields=[
            {"group": "leq", "metric": "LAeq", "scale": 0.1},
            {"group": "lmax", "metric": "LAmax", "scale": 0.1},
            {"group": "t", "metric": "temperature", "offset": -40},
        ],
    )
    assert parser.feed(b"L634,712\r\nL600,700,T65\r\n", 0.0) == [
        {"LAeq": pytest.approx(63.4), "LAmax": pytest.approx(71.2)},  # the optional group is absent
        {"LAeq": 60.0, "LAmax": 70.0, "temperature": 25.0},
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"pattern": "LAeq=(?P<LAeq>[0-9.]+"}, "devices[0].pattern: not a valid regular expression: missing )"),
        ({"pattern": "LAeq=([0-9.]+)"}, "devices[0].pattern: needs at least one named group"),
        ({"pattern": "(?P<leq>[0-9.]+)"}, "devices[0].pattern: named group 'leq' is not a metric"),
        (
            {"pattern": "(?P<leq>[0-9.]+)", "fields": [{"group": "lmax", "metric": "LAmax"}]},
            "devices[0].fields[0].group: the pattern has no group 'lmax' (leq)",
        ),
        (
            {"pattern": "(?P<leq>[0-9.]+)", "fields": [{"group": "leq", "metric": "LAeq", "unit": "dB"}]},
            "devices[0].fields[0].unit: metric 'LAeq' is measured in 'dB(A)', not 'dB'",
        ),
        ({"pattern": "(?P<LAeq>.+)", "aggregate": "median"}, "devices[0].aggregate: must be one of"),
        ({"pattern": "(?P<LAeq>.+)", "serial": {"port": "/dev/x", "baudrate": 1234}}, "devices[0].serial.baudrate"),
    ],
)
def test_line_settings_errors_name_their_path(fields: dict[str, Any], message: str) -> None:
    base = {"id": "n-1", "driver": "ascii_lines", "serial": {"port": "/dev/ttyUSB0"}}
    with pytest.raises(ConfigError) as caught:
        device(**{**base, **fields})
    assert message in str(caught.value)


def test_sample_devices_load() -> None:
    """The driver's sample configuration is valid (it is the documentation of its keys)."""
    devices = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["devices"]
    settings = settings_from_data(
        {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}, "devices": devices}, env={}
    )
    assert [d.driver for d in settings.devices] == ["sds011", "ascii_lines", "ascii_lines"]
    assert [d.points() for d in settings.devices] == [2, 2, 2]
    for config in settings.devices:
        create_driver(config, clock=SystemClock())  # constructing a driver does no I/O


def test_registry() -> None:
    assert driver_class("sds011") is Sds011Driver
    assert driver_class("ascii_lines") is AsciiLinesDriver


def test_mean_and_latest_aggregation() -> None:
    """Measurements between two polls: ``latest`` gives the last with its time, ``mean`` their mean
    (stamped with the last); a metric missing from some lines is aggregated over those that have it."""
    t = [datetime(2025, 6, 3, 5, 0, s, tzinfo=UTC) for s in range(3)]
    samples = [
        Sample(t[0], {"LAeq": 60.0, "LAmax": 70.0}),
        Sample(t[1], {"LAeq": 61.0}),
        Sample(t[2], {"LAeq": 63.1}),
    ]
    metrics = ["LAeq", "LAmax", "temperature"]
    assert aggregate(samples, metrics, "latest") == {"LAeq": (63.1, t[2]), "LAmax": (70.0, t[0])}
    assert aggregate(samples, metrics, "mean") == {"LAeq": (61.3667, t[2]), "LAmax": (70.0, t[0])}
    assert aggregate([], metrics, "mean") == {}


# ---------------------------------------------------------------------------------------------
# Against the real simulator
# ---------------------------------------------------------------------------------------------


@dataclass
class SerialSim:
    process: ManagedProcess
    control: int
    paths: dict[str, Path]

    def state(self, model: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.control}/state", timeout=5) as answer:
            devices = json.load(answer)["devices"]
        (found,) = [d for d in devices if d["model"] == model]
        return dict(found)

    def inject(self, model: str, **faults: float) -> None:
        index = list(self.paths).index(model)
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.control}/devices/{index}/faults",
            data=json.dumps(faults).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200


@pytest.fixture
def serial_sim(tmp_path: Path) -> Iterator[Callable[..., SerialSim]]:
    started: list[ManagedProcess] = []

    def start(*models: str, period: float = 1.0, name: str = "serial-sim") -> SerialSim:
        paths = {model: tmp_path / f"tty-{model}" for model in models}
        control = free_port()
        argv = [sys.executable, "-m", "misto.sim.cli", "serial", "--seed", "20250101", "--freeze"]
        argv += ["--control", f"{LOOPBACK}:{control}", "--period", str(period)]
        for model, path in paths.items():
            argv += ["--device", f"{model}@{path}"]
        process = ManagedProcess.start(
            argv,
            name=f"{name}-{len(started)}",
            log_dir=tmp_path,
            ready=lambda: all(p.is_symlink() for p in paths.values()) and port_open(LOOPBACK, control),
            ready_timeout=20.0,
        )
        started.append(process)
        return SerialSim(process, control, paths)

    yield start
    for process in started:
        process.stop()


def sds011(sim: SerialSim, **fields: Any) -> Sds011Driver:
    made = create_driver(
        device(
            **{"id": "pm-1", "driver": "sds011", "serial": {"port": str(sim.paths["sds011"])}, "timeout": 3, **fields}
        ),
        clock=SystemClock(),
    )
    assert isinstance(made, Sds011Driver)
    return made


def noise_meter(sim: SerialSim, **fields: Any) -> AsciiLinesDriver:
    config = device(
        id="nm-1", driver="ascii_lines", serial={"port": str(sim.paths["nm2"])}, timeout=3, pattern=NOISE_PATTERN
    )
    made = create_driver(config.model_copy(update=fields), clock=SystemClock())
    assert isinstance(made, AsciiLinesDriver)
    return made


async def until(what: str, condition: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    async with asyncio.timeout(deadline):
        while not (result := condition()):  # noqa: ASYNC110 - another process changes the state
            await asyncio.sleep(0.05)
    return result


async def read_once_it_reports(driver: Any, deadline: float = DEADLINE) -> list[Any]:
    """A read that may have to wait past a 1 s timeout for the sensor's first frame (it reports once
    a second, so a read started just after a frame can time out on a loaded machine)."""
    async with asyncio.timeout(deadline):
        while True:
            try:
                readings: list[Any] = await driver.read()
                return readings
            except DeviceTimeout:
                continue


async def read_until_it_fails(driver: Any, attempts: int = 3) -> None:
    for _ in range(attempts):
        await driver.read()


async def test_sds011_frames_decode_to_what_the_simulator_sends(serial_sim: Callable[..., SerialSim]) -> None:
    sim = serial_sim("sds011")
    driver = sds011(sim)
    before = datetime.now(UTC)
    try:
        await driver.start()
        readings = await driver.read()
    finally:
        await driver.close()
    state = sim.state("sds011")
    assert {r.metric: r.value for r in readings} == state["values"]  # exactly: tenths of ug/m3
    assert {r.unit for r in readings} == {"ug/m3"}
    assert all(before <= r.ts <= datetime.now(UTC) for r in readings)
    assert driver.sensor_id == state["sensor_id"]
    assert driver.counters()["frames"] >= 1


async def test_sds011_counts_and_skips_every_fault(serial_sim: Callable[..., SerialSim]) -> None:
    sim = serial_sim("sds011", period=0.6)  # faster than the real sensor: a cut frame is found by its tail
    driver = sds011(sim)
    try:
        await driver.start()
        await driver.read()
        errors = ("garbage_bytes", "bad_checksum", "short_frames")
        assert [driver.counters()[k] for k in errors] == [0, 0, 0]
        sim.inject("sds011", garbage=3, corrupt=2, truncate=2)  # seven spoilt messages, then good ones
        state = await until("the faults to be sent", lambda: not (s := sim.state("sds011"))["pending_faults"] and s)
        faults = state["faults"]
        expected = {"garbage_bytes": faults["garbage_bytes"], "bad_checksum": 2, "short_frames": 2}
        await until(
            f"the driver to count {expected}",
            lambda: {k: driver.counters()[k] for k in expected} == expected,
        )
        readings = await driver.read()
        assert {r.metric: r.value for r in readings} == state["values"]
    finally:
        await driver.close()
    assert faults["garbage_events"] == 3
    print(f"\nSDS011 faults injected and counted exactly: {expected}")


async def test_ascii_noise_lines_parsed_and_bad_lines_counted(serial_sim: Callable[..., SerialSim]) -> None:
    sim = serial_sim("nm2")
    driver = noise_meter(sim)
    try:
        await driver.start()
        readings = await driver.read()
        assert {r.metric: r.value for r in readings} == sim.state("nm2")["values"]
        assert {r.unit for r in readings} == {"dB(A)"}
        sim.inject("nm2", garbage=1, corrupt=2, truncate=1)
        expected = {"undecodable": 1, "malformed": 2, "truncated": 1}
        await until(f"the driver to count {expected}", lambda: {k: driver.counters()[k] for k in expected} == expected)
        assert driver.counters()["values_rejected"] == 0
        readings = await driver.read()
        assert {r.metric: r.value for r in readings} == sim.state("nm2")["values"]
    finally:
        await driver.close()


async def test_silence_fails_the_poll_and_the_sensor_comes_back(serial_sim: Callable[..., SerialSim]) -> None:
    sim = serial_sim("sds011")
    driver = sds011(sim, timeout=1)
    try:
        await driver.start()
        await read_once_it_reports(driver)
        sim.inject("sds011", silence=2.0)
        await until("the silence to start", lambda: sim.state("sds011")["silent_for"] > 0)
        with pytest.raises(DeviceTimeout, match=r"nothing received on .*tty-sds011 for 1s"):
            await read_until_it_fails(driver)  # a frame sent just before the silence may still be waiting
        await until("the silence to end", lambda: sim.state("sds011")["silent_for"] == 0)
        readings = await read_once_it_reports(driver)
        assert len(readings) == 2
    finally:
        await driver.close()


async def test_a_vanished_port_fails_the_poll_and_is_reopened(serial_sim: Callable[..., SerialSim]) -> None:
    sim = serial_sim("sds011")
    driver = sds011(sim)
    try:
        await driver.start()
        await driver.read()
        sim.process.stop()  # the terminal closes, like a USB adapter pulled out
        with pytest.raises(DeviceConnectionError, match="tty-sds011"):
            await read_until_it_fails(driver)  # frames that arrived before are still reported
        with pytest.raises(DeviceConnectionError, match="cannot open serial port"):
            await driver.read()
        again = serial_sim("sds011")  # plugged in again at the same path
        assert again.paths == sim.paths
        readings = await driver.read()
        assert {r.metric: r.value for r in readings} == again.state("sds011")["values"]
        assert driver.counters()["port_lost"] == 1
    finally:
        await driver.close()


async def test_a_port_has_one_reader(serial_sim: Callable[..., SerialSim]) -> None:
    sim = serial_sim("sds011")
    first, second = sds011(sim), sds011(sim)
    try:
        await first.start()
        with pytest.raises(DeviceConnectionError, match="cannot open serial port"):
            await second.start()
    finally:
        await first.close()
        await second.close()
