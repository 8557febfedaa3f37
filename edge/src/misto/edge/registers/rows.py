"""The configuration model of one register-map row, shared by inline ``registers:`` in the
gateway config and by the built-in profiles (so both are checked by the same rules)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from misto.edge.config_errors import ConfigProblem
from misto.edge.registers.spec import DataType, Order, RegisterSpec, Table
from misto.protocol import vocabulary

MAX_ADDRESS = 65535

StrictInt = Annotated[int, Field(strict=True)]
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class RegisterRow(BaseModel):
    """One metric of a device: where its registers are and how to turn them into a value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(description="Metric name from the Misto vocabulary (misto.protocol.vocabulary)")
    table: Table = Field(description="holding (function 03) or input (function 04)")
    address: StrictInt = Field(ge=0, le=MAX_ADDRESS, description="Protocol address of the first register (0-based)")
    type: DataType
    word_order: Order = Field(default=Order.BIG, description="big: high word first (ABCD); little: low word first")
    byte_order: Order = Field(default=Order.BIG, description="big: high byte first in each register")
    scale: FiniteFloat = Field(default=1.0, description="engineering value = raw * scale + offset")
    offset: FiniteFloat = 0.0
    unit: str | None = Field(default=None, description="Defaults to the metric's unit; must equal it if given")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in vocabulary.METRICS:
            known = ", ".join(sorted(vocabulary.METRICS))
            raise ValueError(f"unknown metric {metric!r}; known metrics: {known}")
        return metric

    @field_validator("scale")
    @classmethod
    def _nonzero_scale(cls, scale: float) -> float:
        if scale == 0:
            raise ValueError("must not be 0")
        return scale

    @model_validator(mode="after")
    def _consistent(self) -> RegisterRow:
        problems: list[tuple[tuple[int | str, ...], str]] = []
        expected = vocabulary.METRICS[self.metric].unit
        if self.unit is not None and self.unit != expected:
            problems.append((("unit",), f"metric {self.metric!r} is measured in {expected!r}, not {self.unit!r}"))
        last = self.address + self.type.words - 1
        if last > MAX_ADDRESS:
            problems.append((("address",), f"a {self.type} at {self.address} would end at {last}, past {MAX_ADDRESS}"))
        if problems:
            raise ConfigProblem(problems)
        return self

    def to_spec(self) -> RegisterSpec:
        return RegisterSpec(
            metric=self.metric,
            table=self.table,
            address=self.address,
            type=self.type,
            unit=self.unit or vocabulary.METRICS[self.metric].unit,
            word_order=self.word_order,
            byte_order=self.byte_order,
            scale=self.scale,
            offset=self.offset,
        )


def overlap_problems(rows: tuple[RegisterRow, ...]) -> list[tuple[tuple[int | str, ...], str]]:
    """Problems for rows of one device that share registers or a metric, at ``(index, field)``."""
    problems: list[tuple[tuple[int | str, ...], str]] = []
    for i, row in enumerate(rows):
        spec = row.to_spec()
        for j in range(i):
            other = rows[j].to_spec()
            if other.table is spec.table and spec.address < other.end and other.address < spec.end:
                problems.append(((i, "address"), f"{spec.describe()} overlaps registers[{j}]: {other.describe()}"))
            if other.metric == spec.metric:
                problems.append(((i, "metric"), f"metric {spec.metric!r} is already read by registers[{j}]"))
    return problems
