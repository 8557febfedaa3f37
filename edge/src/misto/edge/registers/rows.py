"""The configuration model of one register-map row, shared by inline ``registers:`` in the
gateway config and by the built-in profiles (so both are checked by the same rules)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from misto.edge.config_errors import ConfigProblem
from misto.edge.registers.planner import MAX_READ_REGISTERS
from misto.edge.registers.spec import DataType, Order, RegisterSpec, Table
from misto.protocol import vocabulary

MAX_ADDRESS = 65535
SUBDEVICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
ATTRIBUTE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"

StrictInt = Annotated[int, Field(strict=True)]
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Problems = list[tuple[tuple[int | str, ...], str]]


class RegisterRow(BaseModel):
    """One value of a device: where its registers are and how to turn them into a reading (``metric``)
    or into a text attribute of the device (``attribute``, type ``string``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = Field(default=None, description="Metric name from the Misto vocabulary")
    attribute: str | None = Field(
        default=None, pattern=ATTRIBUTE_PATTERN, description="A text attribute (model, serial number): not a reading"
    )
    table: Table = Field(description="holding (03), input (04), coil (01) or discrete_input (02)")
    address: StrictInt = Field(ge=0, le=MAX_ADDRESS, description="Protocol address of the first register (0-based)")
    type: DataType | None = Field(default=None, description="Required for registers; coils are always bits")
    count: StrictInt | None = Field(default=None, ge=1, le=MAX_READ_REGISTERS, description="Registers of a string")
    bit: StrictInt | None = Field(default=None, ge=0, le=15, description="Bit of the register, 0 = least significant")
    word_order: Order | None = Field(default=None, description="big: high word first (ABCD); little: low word first")
    byte_order: Order | None = Field(default=None, description="big: high byte first in each register")
    scale: FiniteFloat = Field(default=1.0, description="engineering value = raw * scale + offset")
    offset: FiniteFloat = 0.0
    unit: str | None = Field(default=None, description="Defaults to the metric's unit; must equal it if given")
    subdevice: str | None = Field(
        default=None, pattern=SUBDEVICE_PATTERN, description="Readings go to device <id>.<subdevice>"
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str | None) -> str | None:
        if metric is not None and metric not in vocabulary.METRICS:
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
        problems = self._name_problems() + self._type_problems()
        if self.metric is not None and self.unit is not None:
            expected = vocabulary.METRICS[self.metric].unit
            if self.unit != expected:
                problems.append((("unit",), f"metric {self.metric!r} is measured in {expected!r}, not {self.unit!r}"))
        last = self.address + max(self.words, 1) - 1
        if last > MAX_ADDRESS:
            problems.append((("address",), f"a {self.kind} at {self.address} would end at {last}, past {MAX_ADDRESS}"))
        if problems:
            raise ConfigProblem(problems)
        return self

    def _name_problems(self) -> Problems:
        if self.metric is None and self.attribute is None:
            return [(("metric",), "is required (or attribute, for a string such as a serial number)")]
        if self.metric is not None and self.attribute is not None:
            return [(("attribute",), "set either metric (a reading) or attribute (a text), not both")]
        if self.attribute is not None and self.unit is not None:
            return [(("unit",), "an attribute is text: it has no unit")]
        return []

    def _type_problems(self) -> Problems:  # noqa: PLR0912 - one branch per rule, each its own message
        problems: Problems = []
        kind = self.kind
        given = self.model_fields_set
        if self.table.is_bits:
            if self.type not in (None, DataType.BIT):
                problems.append((("type",), f"a {self.table} is a single bit: type must be bit (or left out)"))
            if self.bit is not None:
                problems.append((("bit",), f"a {self.table} is a single bit: remove bit"))
        elif self.type is None:
            problems.append((("type",), "is required"))
        elif self.type is DataType.BIT and self.bit is None:
            problems.append((("bit",), 'required when type is "bit" (0 = least significant bit)'))
        elif self.type is not DataType.BIT and self.bit is not None:
            problems.append((("bit",), "only for type bit"))
        if kind is DataType.STRING and self.count is None:
            problems.append((("count",), 'required when type is "string" (registers, two characters each)'))
        if kind is not DataType.STRING and self.count is not None:
            problems.append((("count",), "only for type string (other types have a fixed width)"))
        if kind is DataType.STRING and self.metric is not None:
            problems.append((("type",), "a reading is a number: read a string as `attribute:`, not `metric:`"))
        if kind is not DataType.STRING and self.attribute is not None:
            problems.append((("type",), "an attribute is text: its type must be string"))
        if not kind.is_number:
            problems += [((key,), f"does not apply to a {kind}") for key in ("scale", "offset") if key in given]
        if (kind is DataType.STRING or kind.words == 1) and self.word_order is not None:
            problems.append((("word_order",), f"does not apply to a {kind} (it is one register or text)"))
        if self.table.is_bits and self.byte_order is not None:
            problems.append((("byte_order",), f"does not apply to a {self.table}"))
        return problems

    @property
    def kind(self) -> DataType:
        """The data type, bits for coils and discrete inputs."""
        return self.type or DataType.BIT

    @property
    def words(self) -> int:
        return (self.count or 0) if self.kind is DataType.STRING else self.kind.words

    @property
    def name(self) -> str:
        return self.metric or self.attribute or ""

    def to_spec(self, *, word_order: Order = Order.BIG, byte_order: Order = Order.BIG) -> RegisterSpec:
        """The spec, with ``word_order``/``byte_order`` as defaults for what the row does not set."""
        return RegisterSpec(
            metric=self.name,
            table=self.table,
            address=self.address,
            type=self.kind,
            unit=self.unit or (vocabulary.METRICS[self.metric].unit if self.metric else ""),
            word_order=self.word_order or word_order,
            byte_order=self.byte_order or byte_order,
            scale=self.scale,
            offset=self.offset,
            bit=self.bit,
            count=self.count or 0,
            subdevice=self.subdevice,
            attribute=self.attribute is not None,
        )


def overlap_problems(rows: tuple[RegisterRow, ...]) -> Problems:
    """Problems for rows of one device that share registers or a name, at ``(index, field)``. Bit
    fields may share a register with other bit fields, each its own bit."""
    problems: Problems = []
    specs = [row.to_spec() for row in rows]
    for i, spec in enumerate(specs):
        for j in range(i):
            other = specs[j]
            both_bits = spec.bit is not None and other.bit is not None
            if other.table is spec.table and spec.address < other.end and other.address < spec.end:
                if not both_bits:
                    problems.append(((i, "address"), f"{spec.describe()} overlaps registers[{j}]: {other.describe()}"))
                elif spec.bit == other.bit:
                    problems.append(((i, "bit"), f"{spec.describe()} is the same bit as registers[{j}]"))
            if other.key == spec.key and other.attribute == spec.attribute:
                what = "attribute" if spec.attribute else "metric"
                where = f" of subdevice {spec.subdevice!r}" if spec.subdevice else ""
                problems.append(((i, what), f"{what} {spec.metric!r}{where} is already read by registers[{j}]"))
    return problems
