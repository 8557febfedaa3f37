"""Configuration of a counting camera (the ``camera`` driver): where its frames come from, the
counting line, and the few numbers of the detector. Images never leave the gateway; only counts
and occupancy are published."""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from misto.edge.config_errors import ConfigProblem
from misto.edge.config_model import ConfigModel, StrictInt
from misto.edge.device_config.base import DeviceBase
from misto.edge.durations import Duration

Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Point = tuple[Fraction, Fraction]


class CountingLine(ConfigModel):
    """A segment across the scene, from ``start`` to ``end``, each ``[x, y]`` as fractions of the
    frame's width and height (``[0, 0]`` is the top-left corner). An object is counted when its
    centre crosses it; ``forward`` is from the left of the line to its right, looking from
    ``start`` to ``end`` (with start at the top and end at the bottom: right to left on screen)."""

    start: Point
    end: Point

    @model_validator(mode="after")
    def _not_a_point(self) -> Self:
        if self.start == self.end:
            raise ConfigProblem.at(("end",), "must differ from start")
        return self


class CameraDevice(DeviceBase):
    """A camera that serves still frames over HTTP (a snapshot URL), counted on the gateway."""

    driver: Literal["camera"]
    url: str = Field(description="http(s)://host[:port]/path answering GET with one binary PGM (P5) frame")
    frame_rate: float = Field(default=5.0, gt=0.0, le=30.0, description="Frames fetched per second")
    timeout: Duration = Field(default=2.0, description="Per frame request")
    line: CountingLine
    threshold: StrictInt = Field(default=25, ge=1, le=254, description="Grey levels from the background = foreground")
    min_area: StrictInt = Field(default=20, ge=1, description="Smaller regions are noise (pixels)")
    vehicle_min_area: StrictInt = Field(default=200, ge=1, description="Regions this large are vehicles (pixels)")
    learning_rate: float = Field(default=0.05, gt=0.0, lt=1.0, description="How fast the background adapts per frame")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"must start with http:// or https://, not {url!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError(f"{url!r} has an invalid port") from None
        if not parts.hostname:
            raise ValueError(f"{url!r} has no host")
        if parts.username or parts.password:
            raise ValueError("must not contain credentials")
        return url

    @model_validator(mode="after")
    def _areas(self) -> Self:
        if self.vehicle_min_area <= self.min_area:
            raise ConfigProblem.at(("vehicle_min_area",), f"must be more than min_area ({self.min_area})")
        return self

    def points(self) -> int:
        return 3  # peopleCount, vehicleCount, occupancy
