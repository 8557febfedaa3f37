"""The synthetic camera: a deterministic street whose objects never touch in a lane, ground truth
that agrees with the objects, frames that show them, and ``misto-sim camera`` as a real process."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from misto.sim.camera.render import PERSON_LEVEL, WINDOW_LEVEL, Renderer, encode_pgm
from misto.sim.camera.scene import LANES, LINE_X, Direction, ObjectClass, Scene
from misto.sim.signals import KYIV
from tests.fixtures.net import LOOPBACK, free_port
from tests.fixtures.processes import ManagedProcess

SIM = [sys.executable, "-m", "misto.sim.cli"]


def test_the_same_seed_makes_the_same_street() -> None:
    a, b = Scene(seed=4), Scene(seed=4)
    a.advance(60.0)
    b.advance(60.0)
    assert a.objects == b.objects
    assert len(a.objects) > 30
    c = Scene(seed=5)
    c.advance(60.0)
    assert c.objects != a.objects


def test_objects_in_a_lane_never_touch() -> None:
    scene = Scene(seed=9)
    scene.advance(120.0)
    for k in range(len(LANES)):
        lane = [o for o in scene.objects if o.lane == k]
        assert lane, f"lane {k} is empty"
        for t in np.arange(0.0, 120.0, 0.25):
            xs = sorted(o.x(float(t)) for o in lane if o.visible(float(t)))
            width = lane[0].shape.width
            assert all(b - a > width for a, b in itertools.pairwise(xs)), f"lane {k} at {t}s"


def test_truth_counts_crossings_and_ends_when_the_street_is_empty() -> None:
    scene = Scene(seed=2, limit=20)
    early = scene.truth(1.0)
    assert early["crossings"] == {c.value: {d.value: 0 for d in Direction} for c in ObjectClass}  # quiet start
    final = scene.truth(200.0)
    assert final["done"]
    assert final["objects_made"] == 20
    assert sum(n for kind in final["crossings"].values() for n in kind.values()) == 20  # type: ignore[attr-defined]
    for o in scene.objects:
        assert o.x(o.crossing_s) == pytest.approx(LINE_X)
        assert (o.x(o.crossing_s + 0.1) > LINE_X) is (o.direction is Direction.LEFT_TO_RIGHT)


def test_busier_in_the_rush_hour_than_at_night() -> None:
    counts = {}
    for hour in (8, 3):
        scene = Scene(seed=1, start=datetime(2025, 6, 3, hour, tzinfo=KYIV))
        scene.advance(300.0)
        counts[hour] = len(scene.objects)
    assert counts[8] > 2 * counts[3]


def test_frames_show_the_objects() -> None:
    scene = Scene(seed=3)
    renderer = Renderer(160, 120, seed=3)
    t = 6.0
    visible = scene.visible(t)
    frame = renderer.frame(visible, t, light=1.0)
    assert frame.shape == (120, 160)
    assert frame.dtype == np.uint8
    inside = [o for o in visible if 0.05 < o.x(t) < 0.95]
    assert {o.cls for o in inside} == set(ObjectClass)
    for o in inside:
        level = float(frame[round(o.y * 120), round(o.x(t) * 160)])
        if o.cls is ObjectClass.PERSON:
            assert abs(level - PERSON_LEVEL) < 15  # dark on the pavement
        else:
            assert abs(level - WINDOW_LEVEL) < 15  # a vehicle's centre is its window, bright on the road
    pgm = encode_pgm(frame)
    assert pgm.startswith(b"P5\n160 120\n255\n")
    assert len(pgm) == len(b"P5\n160 120\n255\n") + 160 * 120


def test_the_camera_process(tmp_path: Path) -> None:
    port = free_port()
    argv = [*SIM, "camera", "--listen", f"{LOOPBACK}:{port}", "--seed", "3", "--step", "0.5", "--objects", "5"]
    process = ManagedProcess.start(argv, name="camera", log_dir=tmp_path, ready_port=port, ready_timeout=20)
    base = f"http://{LOOPBACK}:{port}"
    try:
        info = json.load(urllib.request.urlopen(f"{base}/", timeout=5))
        assert (info["width"], info["height"], info["mode"], info["line"]["start"]) == (160, 120, "stepped", [0.5, 0.0])
        times = []
        for _ in range(3):
            with urllib.request.urlopen(f"{base}/frame.pgm", timeout=5) as answer:
                assert answer.headers["Content-Type"] == "image/x-portable-graymap"
                times.append(float(answer.headers["X-Frame-Time"]))
                assert len(answer.read()) == 15 + 160 * 120
        assert times == [0.0, 0.5, 1.0]  # stepped: each frame is half a second of scene time later
        truth = json.load(urllib.request.urlopen(f"{base}/truth", timeout=5))
        assert truth["t"] == 1.0
        assert truth["objects_limit"] == 5
        for path, status in (("/frame.png", 404), ("/truth?x", 200)):
            try:
                code = urllib.request.urlopen(f"{base}{path}", timeout=5).status
            except urllib.error.HTTPError as exc:
                code = exc.code
            assert code == status
    finally:
        assert process.stop() == 0
    assert 'serving camera "Misto street camera (synthetic)"' in process.log_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "127.0.0.1:0", "--size", "10x10"], "--size '10x10'"),
        (["--listen", "localhost"], "--listen 'localhost': expected HOST:PORT"),
    ],
)
def test_camera_usage_errors(args: list[str], message: str) -> None:
    result = subprocess.run([*SIM, "camera", *args], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_readme_example_runs(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    session = re.search(r"```console\n\$ (misto-sim camera [^\n]+)\n(.*?)```", readme, flags=re.DOTALL)
    assert session is not None
    port = str(free_port())
    process = ManagedProcess.start(
        [*SIM, *session[1].replace("8081", port).split()[1:]],
        name="readme-camera",
        log_dir=tmp_path,
        ready_port=int(port),
        ready_timeout=20,
    )
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/frame.pgm", timeout=5) as answer:
            assert answer.read().startswith(b"P5\n160 120\n255\n")
    finally:
        assert process.stop() == 0
    assert session[2].replace("8081", port).strip() in process.log_text()
