"""The camera driver: PGM decoding, connected regions, tracking and line crossings on their own,
fetching frames over HTTP with its failures, then counting against the ground truth of the real
simulator (``misto-sim camera``), and a whole agent showing that only counts leave the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import urllib.request
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from misto.edge.clock import SystemClock
from misto.edge.device_config import CameraDevice
from misto.edge.drivers import create_driver, driver_class
from misto.edge.drivers.camera.driver import CameraDriver
from misto.edge.drivers.camera.fetch import FrameSource
from misto.edge.drivers.camera.pgm import FrameFormatError, decode_pgm
from misto.edge.drivers.camera.regions import Region, regions
from misto.edge.drivers.camera.tracker import Crossing, Direction, Kind, Line, Tracker
from misto.edge.errors import ConfigError, DeviceConnectionError, DeviceRejected, DeviceTimeout, DriverError
from misto.edge.settings import settings_from_data
from misto.protocol import Channel, codec, topics
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import LOOPBACK, free_port
from tests.fixtures.processes import ManagedProcess

SAMPLE = Path(__file__).parents[1] / "src" / "misto" / "edge" / "drivers" / "camera" / "sample.yaml"
DEADLINE = 30.0
VERTICAL = {"start": [0.5, 0.0], "end": [0.5, 1.0]}


def device(**fields: Any) -> Any:
    base = {"id": "cam-1", "driver": "camera", "url": "http://127.0.0.1:9/frame.pgm", "line": VERTICAL}
    settings = settings_from_data(
        {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}, "devices": [{**base, **fields}]}, env={}
    )
    return settings.devices[0]


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def test_sample_device_loads() -> None:
    devices = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))["devices"]
    settings = settings_from_data(
        {"gateway_id": "gw-test", "broker": {"url": "mqtt://127.0.0.1"}, "devices": devices}, env={}
    )
    (camera,) = settings.devices
    assert isinstance(camera, CameraDevice)
    assert (camera.driver, camera.points(), camera.frame_rate) == ("camera", 3, 5.0)
    assert driver_class("camera") is CameraDriver
    create_driver(camera, clock=SystemClock())  # no I/O, no task before start()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "rtsp://10.0.0.1/stream"}, "devices[0].url: must start with http:// or https://"),
        ({"url": "http://user:pw@10.0.0.1/x.pgm"}, "devices[0].url: must not contain credentials"),
        ({"line": {"start": [0.5, 0], "end": [0.5, 0]}}, "devices[0].line.end: must differ from start"),
        ({"line": {"start": [1.5, 0], "end": [0.5, 1]}}, "devices[0].line.start[0]: must be at most 1.0, not 1.5"),
        ({"min_area": 300}, "devices[0].vehicle_min_area: must be more than min_area (300)"),
        ({"frame_rate": 0}, "devices[0].frame_rate: must be greater than 0.0"),
    ],
)
def test_camera_settings_errors_name_their_path(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        device(**fields)
    assert message in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Frames, regions, tracks
# ---------------------------------------------------------------------------------------------


def test_pgm_decoding() -> None:
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(decode_pgm(b"P5\n# a comment\n4 3\n255\n" + pixels.tobytes()), pixels)
    wide = np.arange(12, dtype=np.uint32).reshape(3, 4) * 5000  # 16-bit samples, most significant byte first
    assert np.array_equal(decode_pgm(b"P5 4 3 65535\n" + wide.astype(">u2").tobytes()), wide * 255 // 65535)
    for bad, reason in [
        (b"\x89PNG\r\n", "not a binary PGM"),
        (b"P5\n4 3\n255\n" + bytes(5), "needs 12 bytes of pixels, got 5"),
        (b"P5\n0 3\n255\n", "frame size 0x3"),
    ]:
        with pytest.raises(FrameFormatError, match=reason):
            decode_pgm(bad)


def flood_fill_regions(mask: np.ndarray[Any, Any]) -> list[tuple[int, float, float]]:
    """(area, x, y) of the 8-connected regions, by the textbook flood fill."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    found = []
    for y0 in range(h):
        for x0 in range(w):
            if not mask[y0, x0] or seen[y0, x0]:
                continue
            queue, pixels = deque([(y0, x0)]), []
            seen[y0, x0] = True
            while queue:
                y, x = queue.popleft()
                pixels.append((y, x))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ny, nx = y + dy, x + dx
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
            n = len(pixels)
            found.append((n, round(sum(p[1] for p in pixels) / n, 6), round(sum(p[0] for p in pixels) / n, 6)))
    return sorted(found)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.floats(0.1, 0.7), st.integers(0, 2**32 - 1))
def test_regions_agree_with_a_flood_fill(h: int, w: int, density: float, seed: int) -> None:
    mask = np.random.default_rng(seed).random((h, w)) < density
    found = sorted((r.area, round(r.x, 6), round(r.y, 6)) for r in regions(mask))
    assert found == flood_fill_regions(mask)


def region(x: float, y: float, area: int = 60) -> Region:
    return Region(area, x, y, int(x) - 3, int(y) - 5, int(x) + 3, int(y) + 5)


def test_tracks_count_each_crossing_once_in_its_direction() -> None:
    tracker = Tracker(line=Line(80, 0, 80, 120), width=160, height=120, vehicle_min_area=200)
    crossings: list[Crossing] = []
    for k in range(30):
        t = k * 0.1
        people = [region(10 + 6 * k, 20), region(150 - 6 * k, 100)]  # one each way
        lingerer = [region(80 + (0.7 if k % 2 else -0.7), 60)]  # stands on the line, centre wobbling
        crossings += tracker.update(people + lingerer, t)
    # (end - start) x (p - start) with the line running down the screen is positive on the left:
    # "forward" is from the right of the screen to the left.
    assert sorted((c.kind, c.direction) for c in crossings) == [
        (Kind.PERSON, Direction.BACKWARD),  # left to right
        (Kind.PERSON, Direction.FORWARD),  # right to left
    ]
    assert tracker.present() == 3


def test_a_big_region_is_a_vehicle_and_a_lost_track_ends() -> None:
    tracker = Tracker(line=Line(80, 0, 80, 120), width=160, height=120, vehicle_min_area=200)
    crossings = []
    for k in range(10):
        crossings += tracker.update([region(40 + 10 * k, 60, area=300)], k * 0.1)
    assert [(c.kind, c.direction) for c in crossings] == [(Kind.VEHICLE, Direction.BACKWARD)]
    for k in range(10, 15):
        tracker.update([], k * 0.1)  # gone: predicted out of the frame, then missed too long
    assert tracker.tracks == []


# ---------------------------------------------------------------------------------------------
# Fetching frames
# ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def http_camera(answer: bytes | None) -> AsyncIterator[int]:
    """A camera answering every request with ``answer`` (``None``: never answers); yields its port."""
    done = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        if answer is None:
            await done.wait()
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        done.set()
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)  # let the handlers finish


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", DeviceRejected, "HTTP 404"),
        (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", DeviceRejected, "HTTP 503"),
        (None, DeviceTimeout, "no complete answer within 0.5s"),
        (b"SSH-2.0-OpenSSH\r\n", DriverError, "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", DriverError, "is over 16777216"),
    ],
)
async def test_fetch_failures_become_driver_errors(answer: bytes | None, error: type, message: str) -> None:
    async with http_camera(answer) as port:
        source = FrameSource(device_id="cam-1", url=f"http://{LOOPBACK}:{port}/frame.pgm", timeout=0.5)
        with pytest.raises(error, match=message) as caught:
            await source.fetch()
    if isinstance(caught.value, DeviceRejected):
        assert caught.value.retryable is (caught.value.code == 503)


async def test_fetch_reads_chunked_and_unsized_bodies() -> None:
    frame = b"P5\n2 2\n255\n\x01\x02\x03\x04"
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nP5\n2 \r\n" + b"%x\r\n" % (len(frame) - 5)
    chunked += frame[5:] + b"\r\n0\r\n\r\n"
    for answer in (chunked, b"HTTP/1.0 200 OK\r\n\r\n" + frame):
        async with http_camera(answer) as port:
            fetched = await FrameSource(device_id="cam-1", url=f"http://{LOOPBACK}:{port}/", timeout=2).fetch()
        assert fetched.body == frame


async def test_unreachable_camera() -> None:
    source = FrameSource(device_id="cam-1", url=f"http://{LOOPBACK}:{free_port()}/frame.pgm", timeout=2)
    with pytest.raises(DeviceConnectionError, match=r"frame\.pgm"):
        await source.fetch()


# ---------------------------------------------------------------------------------------------
# Against the simulated camera
# ---------------------------------------------------------------------------------------------


@dataclass
class CameraSim:
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/frame.pgm"

    def truth(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/truth", timeout=5) as answer:
            return dict(json.load(answer))


@pytest.fixture
def camera_sim(tmp_path: Path) -> Iterator[Callable[..., CameraSim]]:
    started: list[ManagedProcess] = []

    def start(*options: str) -> CameraSim:
        port = free_port()
        argv = [sys.executable, "-m", "misto.sim.cli", "camera", "--listen", f"{LOOPBACK}:{port}", *options]
        process = ManagedProcess.start(
            argv, name=f"camera-sim-{len(started)}", log_dir=tmp_path, ready_port=port, ready_timeout=20
        )
        started.append(process)
        return CameraSim(process, port)

    yield start
    for process in started:
        process.stop()


def camera(sim: CameraSim, **fields: Any) -> CameraDriver:
    made = create_driver(device(url=sim.url, **fields), clock=SystemClock())
    assert isinstance(made, CameraDriver)
    return made


async def until(what: str, condition: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    async with asyncio.timeout(deadline):
        while not (result := condition()):  # noqa: ASYNC110 - another process changes the state
            await asyncio.sleep(0.1)
    return result


async def test_counts_match_the_ground_truth(camera_sim: Callable[..., CameraSim]) -> None:
    """48 people and vehicles cross the line; the driver's counts by kind and direction are compared
    with the simulator's ground truth. The simulator steps its scene 0.2 s per frame (5 frames/s of
    scene time, whatever the load on this machine), served as fast as the driver asks."""
    objects = 48
    sim = camera_sim("--seed", "20250101", "--step", "0.2", "--objects", str(objects))
    driver = camera(sim, frame_rate=30)
    published = Counter[str]()
    try:
        await driver.start()
        truth = await until("every object to cross", lambda: (t := sim.truth())["done"] and t)
        frames_at_done = driver.frames_total
        await until("one more frame", lambda: driver.frames_total > frames_at_done + 1)
        for reading in await driver.read():
            published[reading.metric] += int(reading.value) if reading.metric != "occupancy" else 0
    finally:
        await driver.close()
    direction = {"left_to_right": "backward", "right_to_left": "forward"}  # for a line drawn downwards
    errors = 0
    lines = []
    for kind in ("person", "vehicle"):
        for way, ours in direction.items():
            expected, counted = truth["crossings"][kind][way], driver.crossings[(kind, ours)]
            errors += abs(expected - counted)
            lines.append(f"{kind} {way}: {counted}/{expected}")
    total = sum(n for kind in truth["crossings"].values() for n in kind.values())
    accuracy = 1 - errors / total
    print(f"\ncamera counting accuracy: {accuracy:.1%} of {total} crossings ({', '.join(lines)})")
    assert total == objects
    assert accuracy >= 0.9
    for kind, metric in (("person", "peopleCount"), ("vehicle", "vehicleCount")):  # what was counted was published
        assert published[metric] == sum(n for (k, _), n in driver.crossings.items() if k == kind)


async def read_twice(driver: CameraDriver) -> None:
    await driver.read()
    await driver.read()


async def test_a_camera_that_stops_answering_makes_the_device_unavailable(
    camera_sim: Callable[..., CameraSim],
) -> None:
    sim = camera_sim("--seed", "1")
    driver = camera(sim, frame_rate=10, timeout=1)
    try:
        await driver.start()
        await until("the background to warm up", lambda: driver.frames_total > 12)
        await driver.read()
        sim.process.stop()
        await until("a failed frame", lambda: driver.errors["connection"] > 0)
        with pytest.raises(DeviceConnectionError, match=r"frame\.pgm"):
            await read_twice(driver)  # frames counted before the camera went away are reported once
    finally:
        await driver.close()


async def test_only_counts_leave_the_gateway(
    camera_sim: Callable[..., CameraSim],
    mosquitto: BrokerInfo,
    subscribe: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A whole agent with a camera: every message it publishes is small and holds only the three
    count metrics; no frame bytes are published or logged."""
    from misto.edge.agent import Agent

    sim = camera_sim("--seed", "7", "--step", "0.2")
    gateway = "gw-camera-1"
    password = mosquitto.add_gateway(gateway)
    watcher = subscribe(f"misto/v1/{gateway}/#")
    config = {
        "gateway_id": gateway,
        "state_dir": str(tmp_path / "state"),
        "broker": {"url": mosquitto.url, "username": gateway, "password": password, "keepalive": 5},
        "poll_interval": 0.5,
        "buffer": {"kind": "memory"},
        "devices": [{"id": "cam-1", "driver": "camera", "url": sim.url, "frame_rate": 20, "line": VERTICAL}],
    }
    agent = Agent(settings_from_data(config, env={}))
    stop = asyncio.Event()
    caplog.set_level("DEBUG", logger="misto")
    running = asyncio.create_task(agent.run(stop))
    telemetry = topics.build(gateway, Channel.TELEMETRY)
    try:
        await until("counts with crossings", lambda: _counted(watcher.on(telemetry)) >= 3)
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE):
            await running
    frame_size = 160 * 120
    payloads = [m.payload for m in watcher.messages]
    assert payloads
    assert max(len(p) for p in payloads) < frame_size // 8, "a message large enough to carry an image"
    assert not any(b"P5\n" in p for p in payloads)
    for received in watcher.on(telemetry):
        message = codec.decode_telemetry(received.payload, topic=received.topic)
        assert {r.metric for r in message.readings} <= {"peopleCount", "vehicleCount", "occupancy"}
    assert caplog.records, "the agent logs"
    assert all("P5" not in r.getMessage() and len(r.getMessage()) < 1000 for r in caplog.records)


def _counted(received: list[Any]) -> int:
    total = 0
    for message in received:
        decoded = codec.decode_telemetry(message.payload, topic=message.topic)
        total += sum(int(r.value) for r in decoded.readings if r.metric in ("peopleCount", "vehicleCount"))
    return total
