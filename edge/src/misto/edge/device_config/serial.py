"""Configuration of raw serial sensors: devices that stream measurements on their own serial line
without being asked (the ``sds011`` particulate sensor, ``ascii_lines`` meters that print one text
line per measurement). The line settings are the same :class:`SerialLine` as Modbus RTU's."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from misto.edge.config_errors import ConfigProblem
from misto.edge.config_model import ConfigModel, Problems, StrictInt
from misto.edge.device_config.base import DeviceBase
from misto.edge.device_config.modbus import SerialLine
from misto.edge.durations import Duration
from misto.protocol import vocabulary

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Aggregate = Literal["latest", "mean"]


class SerialStreamDevice(DeviceBase):
    """What every streaming serial sensor has: its line, how long a poll waits for a measurement,
    and how the measurements received between two polls become one reading per metric."""

    serial: SerialLine
    timeout: Duration = Field(
        default=5.0,
        description="A poll with nothing received since the previous poll waits this long, then fails",
    )
    aggregate: Aggregate = Field(
        default="latest",
        description="latest: the last measurement received; mean: the mean of those since the previous poll",
    )


class Sds011Device(SerialStreamDevice):
    """A Nova Fitness SDS011 particulate sensor in active reporting mode (a 10-byte frame a second)."""

    driver: Literal["sds011"]

    def points(self) -> int:
        return 2  # pm25, pm10


class LineField(ConfigModel):
    """One value of a text line: the regular expression's named group ``group`` is ``metric``,
    as ``float(text) * scale + offset``."""

    group: str = Field(min_length=1, description="A named group of the pattern, (?P<name>...)")
    metric: str = Field(description="Metric name from the Misto vocabulary")
    scale: FiniteFloat = 1.0
    offset: FiniteFloat = 0.0
    unit: str | None = Field(default=None, description="Defaults to the metric's unit; must equal it if given")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in vocabulary.METRICS:
            raise ValueError(f"unknown metric {metric!r}; known metrics: {', '.join(sorted(vocabulary.METRICS))}")
        return metric

    @model_validator(mode="after")
    def _unit(self) -> Self:
        expected = vocabulary.METRICS[self.metric].unit
        if self.unit is not None and self.unit != expected:
            raise ConfigProblem.at(("unit",), f"metric {self.metric!r} is measured in {expected!r}, not {self.unit!r}")
        if self.scale == 0:
            raise ConfigProblem.at(("scale",), "must not be 0")
        return self

    @property
    def resolved_unit(self) -> str:
        return self.unit or vocabulary.METRICS[self.metric].unit


class AsciiLinesDevice(SerialStreamDevice):
    """A meter that prints one ASCII line per measurement (ended by CR, LF or CR LF), read with a
    regular expression whose named groups are the values, e.g. a noise meter printing
    ``LAeq=63.4 LAmax=71.2 dB(A)`` every second."""

    driver: Literal["ascii_lines"]
    pattern: str = Field(min_length=1, description="Python regular expression matched against the whole line")
    fields: tuple[LineField, ...] | None = Field(
        default=None, description="Named group -> metric; default: each named group is the metric of its name"
    )
    max_line_length: StrictInt = Field(default=256, ge=8, le=4096, description="Longer lines are discarded (counted)")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            where = f" at position {exc.pos}" if exc.pos is not None else ""
            raise ValueError(f"not a valid regular expression: {exc.msg}{where}") from None
        if not compiled.groupindex:
            raise ValueError("needs at least one named group, such as (?P<LAeq>[0-9.]+)")
        return pattern

    @model_validator(mode="after")
    def _fields_match_groups(self) -> Self:
        groups = set(re.compile(self.pattern).groupindex)
        problems: Problems = []
        if self.fields is None:
            problems += [
                (("pattern",), f"named group {g!r} is not a metric: name the groups after metrics or list fields")
                for g in sorted(groups)
                if g not in vocabulary.METRICS
            ]
        else:
            if not self.fields:
                problems.append((("fields",), "must list at least one field (or be left out)"))
            metrics: dict[str, int] = {}
            for i, field in enumerate(self.fields):
                if field.group not in groups:
                    known = ", ".join(sorted(groups))
                    problems.append((("fields", i, "group"), f"the pattern has no group {field.group!r} ({known})"))
                if field.metric in metrics:
                    problems.append(
                        (("fields", i, "metric"), f"{field.metric!r} is already fields[{metrics[field.metric]}]")
                    )
                metrics.setdefault(field.metric, i)
        if problems:
            raise ConfigProblem(problems)
        return self

    def line_fields(self) -> tuple[LineField, ...]:
        """The fields, with the default (each named group is its metric) filled in."""
        if self.fields is not None:
            return self.fields
        return tuple(LineField(group=g, metric=g) for g in re.compile(self.pattern).groupindex)

    def points(self) -> int:
        return len(self.line_fields())


__all__ = ["AsciiLinesDevice", "LineField", "Sds011Device", "SerialStreamDevice"]
