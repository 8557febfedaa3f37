"""Configuration of Modbus devices (the ``modbus_*`` drivers)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from misto.edge.config_errors import ConfigProblem
from misto.edge.config_model import ConfigModel, StrictInt
from misto.edge.device_config.base import DeviceBase
from misto.edge.durations import Duration
from misto.edge.registers.planner import MAX_READ_REGISTERS
from misto.edge.registers.profiles import builtin_profiles
from misto.edge.registers.rows import RegisterRow, overlap_problems
from misto.edge.registers.spec import RegisterSpec


class ModbusDevice(DeviceBase):
    """What every Modbus device has, whatever the transport: unit id, timing and a register map
    (a built-in ``profile`` or inline ``registers``)."""

    unit_id: StrictInt = Field(default=1, ge=0, le=255)
    timeout: Duration = Field(default=3.0, description="Per request, for each attempt")
    retries: StrictInt = Field(default=2, ge=0, le=10, description="Extra attempts after a timeout")
    profile: str | None = Field(default=None, description="Built-in register map (e.g. aq1, nm1)")
    registers: tuple[RegisterRow, ...] | None = None
    max_read_gap: StrictInt = Field(default=0, ge=0, le=MAX_READ_REGISTERS - 2)
    max_read_registers: StrictInt = Field(default=MAX_READ_REGISTERS, ge=1, le=MAX_READ_REGISTERS)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, name: str | None) -> str | None:
        if name is not None and name not in builtin_profiles():
            raise ValueError(f"unknown profile {name!r}; built-in profiles: {', '.join(sorted(builtin_profiles()))}")
        return name

    @field_validator("registers")
    @classmethod
    def _no_overlaps(cls, rows: tuple[RegisterRow, ...] | None) -> tuple[RegisterRow, ...] | None:
        if rows is not None and not rows:
            raise ValueError("must list at least one register")
        if rows and (problems := overlap_problems(rows)):
            raise ConfigProblem(problems)
        return rows

    @model_validator(mode="after")
    def _one_register_source(self) -> Self:
        if self.profile is None and self.registers is None:
            raise ConfigProblem.at((), "set either profile (a built-in register map) or registers")
        if self.profile is not None and self.registers is not None:
            raise ConfigProblem.at(("registers",), "set either profile or registers, not both")
        widest = max(spec.words for spec in self.specs())
        if widest > self.max_read_registers:
            raise ConfigProblem.at(
                ("max_read_registers",), f"must be at least {widest}: a value of this device spans {widest} registers"
            )
        return self

    def specs(self) -> tuple[RegisterSpec, ...]:
        if self.profile is not None:
            return builtin_profiles()[self.profile].specs()
        return tuple(row.to_spec() for row in self.registers or ())

    def points(self) -> int:
        return len(self.specs())


class ModbusTcpDevice(ModbusDevice):
    """A Modbus TCP device (or a Modbus TCP gateway in front of RS-485 devices)."""

    driver: Literal["modbus_tcp"]
    host: str = Field(min_length=1)
    port: StrictInt = Field(default=502, ge=1, le=65535)


class SerialLine(ConfigModel):
    """An RS-485/RS-232 line. Every device on the same ``port`` shares one bus: its requests are
    serialised, and the line settings of those devices must agree."""

    port: str = Field(min_length=1, description="Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    baudrate: StrictInt = Field(default=9600, description="Bits per second")
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1

    @field_validator("baudrate")
    @classmethod
    def _standard_rate(cls, rate: int) -> int:
        if rate not in STANDARD_BAUDRATES:
            raise ValueError(f"must be a standard rate ({', '.join(map(str, STANDARD_BAUDRATES))}), not {rate}")
        return rate


STANDARD_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


class ModbusRtuDevice(ModbusDevice):
    """A Modbus RTU device on a serial line (RS-485 bus), addressed by ``unit_id``."""

    driver: Literal["modbus_rtu"]
    serial: SerialLine


class ModbusRtuOverTcpDevice(ModbusDevice):
    """A Modbus RTU device behind a transparent serial-to-TCP converter (RTU frames over TCP)."""

    driver: Literal["modbus_rtu_tcp"]
    host: str = Field(min_length=1)
    port: StrictInt = Field(default=502, ge=1, le=65535)
