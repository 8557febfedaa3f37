"""The street a simulated camera looks at, and its ground truth. Pure Python (no images here).

The frame shows a road with two vehicle lanes (left to right above, right to left below) between
two pavements, each with a lane of people walking each way: six lanes, each with its own constant
speed, so nothing overtakes. Objects enter at one edge, cross the frame and leave at the other. The
counting line is the vertical line through the middle of the frame; an object crosses it when its
centre does. How often objects come follows the time of day (``ACTIVITY``: busy in the rush
hours, quiet at night), with a minimum gap in each lane so that objects in one lane never touch.

Geometry is in fractions of the frame (width ``W``, height ``H``), speeds in frame widths per
second, so the same scene renders at any size. Everything is decided by the seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from misto.sim.signals import Bump, Daily, Daytime, Moment


class ObjectClass(StrEnum):
    PERSON = "person"
    VEHICLE = "vehicle"


class Direction(StrEnum):
    LEFT_TO_RIGHT = "left_to_right"
    RIGHT_TO_LEFT = "right_to_left"


@dataclass(frozen=True, slots=True)
class Lane:
    cls: ObjectClass
    direction: Direction
    y: float
    """Centre, as a fraction of the height."""
    speed: tuple[float, float]
    """Range the lane's speed is drawn from, in frame widths per second."""
    mean_gap_s: float
    """Mean extra time between two objects at full activity (on top of the minimum gap)."""


@dataclass(frozen=True, slots=True)
class Shape:
    width: float
    """Fraction of the frame width."""
    height: float
    """Fraction of the frame height."""


SHAPES = {ObjectClass.PERSON: Shape(0.04, 0.10), ObjectClass.VEHICLE: Shape(0.16, 0.10)}
LANES = (
    Lane(ObjectClass.PERSON, Direction.LEFT_TO_RIGHT, 0.12, (0.24, 0.32), 1.6),
    Lane(ObjectClass.PERSON, Direction.RIGHT_TO_LEFT, 0.25, (0.24, 0.32), 1.6),
    Lane(ObjectClass.VEHICLE, Direction.LEFT_TO_RIGHT, 0.43, (0.55, 0.80), 1.2),
    Lane(ObjectClass.VEHICLE, Direction.RIGHT_TO_LEFT, 0.58, (0.55, 0.80), 1.2),
    Lane(ObjectClass.PERSON, Direction.LEFT_TO_RIGHT, 0.77, (0.24, 0.32), 1.6),
    Lane(ObjectClass.PERSON, Direction.RIGHT_TO_LEFT, 0.90, (0.24, 0.32), 1.6),
)
ROAD = (0.36, 0.65)
"""The road's top and bottom, as fractions of the height."""
MIN_SPACING = 0.25
"""Free road between two objects of one lane, in frame widths."""
LINE_X = 0.5
FIRST_SPAWN_S = (1.0, 3.0)
"""The street is empty for the first second (a counting camera's background model needs a moment)."""
ACTIVITY = Daily(
    base=0.12,
    daytime=Daytime(rise=0.4, start=6.5, end=22.0, ramp=1.0),
    bumps=(Bump(hour=8.0, height=0.5, width=1.2, weekend=0.4), Bump(hour=18.0, height=0.5, width=1.5, weekend=0.5)),
    floor=0.05,
    ceiling=1.0,
)
"""How busy the street is (1 = rush hour), by local time."""
DAYLIGHT = Daily(base=0.62, daytime=Daytime(rise=0.38, start=6.0, end=20.0, ramp=1.5), floor=0.6, ceiling=1.0)
"""Scene brightness by local time (street lights at night)."""


@dataclass(frozen=True, slots=True)
class SceneObject:
    index: int
    cls: ObjectClass
    direction: Direction
    lane: int
    spawn_s: float
    speed: float
    """Frame widths per second."""
    y: float
    shape: Shape

    def x(self, t: float) -> float:
        """Centre at scene time ``t``, as a fraction of the width (outside 0..1 when off screen)."""
        travelled = (t - self.spawn_s) * self.speed
        start = -self.shape.width / 2
        return start + travelled if self.direction is Direction.LEFT_TO_RIGHT else 1 - start - travelled

    @property
    def crossing_s(self) -> float:
        """When the centre is on the counting line."""
        return self.spawn_s + (LINE_X + self.shape.width / 2) / self.speed

    @property
    def exit_s(self) -> float:
        return self.spawn_s + (1 + self.shape.width) / self.speed

    def visible(self, t: float) -> bool:
        return self.spawn_s < t < self.exit_s


@dataclass(slots=True)
class _LaneState:
    speed: float
    next_spawn_s: float


@dataclass
class Scene:
    """Objects of one street, made as time goes on. ``limit`` stops after that many objects
    (then the street empties and :meth:`truth` says ``done``)."""

    seed: int
    start: datetime | None = None
    """The instant of scene time 0; ``None``: always rush hour at midday."""
    limit: int | None = None
    objects: list[SceneObject] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}/camera")  # noqa: S311 - simulation
        self._lanes = []
        for lane in LANES:
            speed = self._rng.uniform(*lane.speed)
            self._lanes.append(_LaneState(speed, self._rng.uniform(*FIRST_SPAWN_S)))

    def advance(self, t: float) -> None:
        """Make every object that appears by ``t``."""
        while self.limit is None or len(self.objects) < self.limit:
            k = min(range(len(LANES)), key=lambda i: self._lanes[i].next_spawn_s)
            state, lane = self._lanes[k], LANES[k]
            if state.next_spawn_s > t:
                break
            shape = SHAPES[lane.cls]
            y = lane.y + self._rng.uniform(-0.01, 0.01)
            self.objects.append(
                SceneObject(len(self.objects), lane.cls, lane.direction, k, state.next_spawn_s, state.speed, y, shape)
            )
            min_gap = (shape.width + MIN_SPACING) / state.speed
            busy = self.activity(state.next_spawn_s)
            state.next_spawn_s += min_gap + self._rng.expovariate(busy / lane.mean_gap_s)

    def visible(self, t: float) -> list[SceneObject]:
        self.advance(t)
        return [o for o in self.objects if o.visible(t)]

    def truth(self, t: float) -> dict[str, object]:
        """Ground truth at scene time ``t``: objects present, crossings so far by class and direction."""
        self.advance(t)
        crossings = {c.value: {d.value: 0 for d in Direction} for c in ObjectClass}
        for o in self.objects:
            if o.crossing_s <= t:
                crossings[o.cls.value][o.direction.value] += 1
        present = [o for o in self.objects if o.visible(t)]
        done = self.limit is not None and len(self.objects) >= self.limit and not present
        done = done and all(o.exit_s <= t for o in self.objects)
        return {
            "t": round(t, 4),
            "objects_made": len(self.objects),
            "objects_limit": self.limit,
            "present": {c.value: sum(1 for o in present if o.cls is c) for c in ObjectClass},
            "crossings": crossings,
            "done": done,
        }

    def at(self, t: float) -> datetime | None:
        """The simulated instant of scene time ``t``."""
        return None if self.start is None else self.start + timedelta(seconds=t)

    def activity(self, t: float) -> float:
        """How busy the street is at scene time ``t`` (0.05..1)."""
        at = self.at(t)
        if at is None:
            return 1.0
        return min(max(ACTIVITY.pattern(Moment.of(at)), 0.05), 1.0)

    def light(self, t: float) -> float:
        """Scene brightness at ``t``: daylight (dimmer at night) with passing clouds."""
        at = self.at(t)
        day = 1.0 if at is None else min(max(DAYLIGHT.pattern(Moment.of(at)), DAYLIGHT.floor), DAYLIGHT.ceiling)
        clouds = 1 + 0.06 * math.sin(2 * math.pi * t / 23) + 0.04 * math.sin(2 * math.pi * t / 61)
        return day * clouds
