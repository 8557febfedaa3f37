"""Following regions from frame to frame and counting line crossings. Pure Python.

Each track predicts where its object is now from its last position and velocity; detections are
matched to tracks greedily, nearest first, within a gate (wider for a track seen once, which has
no velocity yet). Unmatched detections start tracks; a track unseen for more than
:data:`MAX_MISSED` frames ends, and so does an unseen track whose object has left the frame (its
predicted centre is outside it), so that it cannot take over an object entering where it left.

A track crosses the line when its centre moves from one side to the other, with a margin of
:data:`MARGIN` pixels on each side (an object standing on the line does not count again and
again). Only confirmed tracks (seen in at least :data:`MIN_HITS` frames) count. ``forward`` is from
the side where ``(end - start) x (p - start) < 0`` to the side where it is positive: from the left
of the line to its right, looking from ``start`` to ``end`` on screen. A track is a vehicle if its
largest region so far had at least ``vehicle_min_area`` pixels, otherwise a person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from misto.edge.drivers.camera.regions import Region

MAX_MISSED = 3
MIN_HITS = 2
MARGIN = 1.5
GATE = 0.1
"""Matching gate of a moving track around its predicted position, as a fraction of the frame's larger side."""
NEW_GATE = 0.3
"""Matching gate of a track seen once (no velocity yet)."""


class Kind(StrEnum):
    PERSON = "person"
    VEHICLE = "vehicle"


class Direction(StrEnum):
    FORWARD = "forward"
    BACKWARD = "backward"


@dataclass(frozen=True, slots=True)
class Crossing:
    track: int
    kind: Kind
    direction: Direction


@dataclass(slots=True)
class Track:
    id: int
    x: float
    y: float
    t: float
    max_area: int
    side: int
    vx: float = 0.0
    vy: float = 0.0
    hits: int = 1
    missed: int = 0

    def predict(self, t: float) -> tuple[float, float]:
        dt = t - self.t
        return self.x + self.vx * dt, self.y + self.vy * dt


@dataclass(frozen=True, slots=True)
class Line:
    """A counting line in pixels."""

    ax: float
    ay: float
    bx: float
    by: float

    def distance(self, x: float, y: float) -> float:
        """Signed distance of ``(x, y)`` from the line: positive on its right (see the module doc)."""
        dx, dy = self.bx - self.ax, self.by - self.ay
        return (dx * (y - self.ay) - dy * (x - self.ax)) / math.hypot(dx, dy)

    def side(self, x: float, y: float, previous: int = 0) -> int:
        d = self.distance(x, y)
        if d > MARGIN:
            return 1
        if d < -MARGIN:
            return -1
        return previous


@dataclass
class Tracker:
    line: Line
    width: int
    height: int
    vehicle_min_area: int
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 0

    def kind(self, track: Track) -> Kind:
        return Kind.VEHICLE if track.max_area >= self.vehicle_min_area else Kind.PERSON

    def present(self) -> int:
        """Confirmed objects seen in the latest frame."""
        return sum(1 for t in self.tracks if t.missed == 0 and t.hits >= MIN_HITS)

    def update(self, detections: list[Region], t: float) -> list[Crossing]:
        """Match the regions of the frame taken at ``t`` (seconds) to tracks; returns the crossings."""
        pairs: list[tuple[float, int, int]] = []
        for ti, track in enumerate(self.tracks):
            px, py = track.predict(t)
            gate = (GATE if track.hits > 1 else NEW_GATE) * max(self.width, self.height)
            for di, det in enumerate(detections):
                d = math.hypot(det.x - px, det.y - py)
                if d <= gate:
                    pairs.append((d, ti, di))
        pairs.sort()
        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        crossings: list[Crossing] = []
        for _, ti, di in pairs:
            if ti in matched_tracks or di in matched_detections:
                continue
            matched_tracks.add(ti)
            matched_detections.add(di)
            crossing = self._move(self.tracks[ti], detections[di], t)
            if crossing is not None:
                crossings.append(crossing)
        survivors: list[Track] = []
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.missed += 1
                x, y = track.predict(t)
                if track.missed > MAX_MISSED or not (0 <= x < self.width and 0 <= y < self.height):
                    continue
            survivors.append(track)
        for di, det in enumerate(detections):
            if di not in matched_detections:
                survivors.append(Track(self._next_id, det.x, det.y, t, det.area, self.line.side(det.x, det.y)))
                self._next_id += 1
        self.tracks = survivors
        return crossings

    def _move(self, track: Track, det: Region, t: float) -> Crossing | None:
        dt = t - track.t
        if dt > 0:
            vx, vy = (det.x - track.x) / dt, (det.y - track.y) / dt
            if track.hits > 1:
                vx, vy = (vx + track.vx) / 2, (vy + track.vy) / 2
            track.vx, track.vy = vx, vy
        track.x, track.y, track.t = det.x, det.y, t
        track.hits += 1
        track.missed = 0
        track.max_area = max(track.max_area, det.area)
        side = self.line.side(det.x, det.y, track.side)
        crossed = track.side not in (0, side)
        track.side = side
        if not crossed or track.hits < MIN_HITS:
            return None
        return Crossing(track.id, self.kind(track), Direction.FORWARD if side > 0 else Direction.BACKWARD)
