"""One frame through the counter: background model, foreground regions, tracking, crossings.

:meth:`FrameCounter.process` is synchronous and CPU-bound (the driver runs it in a worker
thread); it keeps no image beyond the background model and the frames of its warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from misto.edge.device_config.camera import CountingLine
from misto.edge.drivers.camera.background import BackgroundModel, Gray
from misto.edge.drivers.camera.regions import regions
from misto.edge.drivers.camera.tracker import Crossing, Line, Tracker


@dataclass(frozen=True, slots=True)
class FrameResult:
    counted: bool
    """False while the background warms up or after a disturbance: nothing could be detected."""
    present: int = 0
    regions: int = 0
    crossings: tuple[Crossing, ...] = field(default_factory=tuple)


class FrameCounter:
    def __init__(
        self, *, line: CountingLine, threshold: int, min_area: int, vehicle_min_area: int, learning_rate: float
    ) -> None:
        self.line = line
        self.min_area = min_area
        self.vehicle_min_area = vehicle_min_area
        self.background = BackgroundModel(threshold=threshold, learning_rate=learning_rate)
        self.size: tuple[int, int] | None = None
        self.tracker: Tracker | None = None
        self.resets = 0

    def _start(self, height: int, width: int) -> Tracker:
        (sx, sy), (ex, ey) = self.line.start, self.line.end
        line = Line(sx * width, sy * height, ex * width, ey * height)
        self.size = (height, width)
        self.background.reset()
        self.tracker = Tracker(line=line, width=width, height=height, vehicle_min_area=self.vehicle_min_area)
        return self.tracker

    def process(self, frame: Gray, t: float) -> FrameResult:
        """Count in ``frame``, taken at ``t`` seconds (any clock that only moves forward)."""
        tracker = self.tracker
        if tracker is None or frame.shape != self.size:
            if tracker is not None:
                self.resets += 1  # the camera changed resolution: start again
            tracker = self._start(*frame.shape)
        mask = self.background.foreground(frame)
        if mask is None:
            tracker.tracks.clear()
            return FrameResult(counted=False)
        found = regions(mask, min_area=self.min_area)
        crossings = tracker.update(found, t)
        return FrameResult(counted=True, present=tracker.present(), regions=len(found), crossings=tuple(crossings))
