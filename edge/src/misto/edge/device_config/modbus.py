"""Configuration of Modbus devices (the ``modbus_*`` drivers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from misto.edge.config_errors import ConfigProblem
from misto.edge.config_model import ConfigModel, Problems, StrictInt
from misto.edge.device_config.base import DeviceBase
from misto.edge.durations import Duration
from misto.edge.registers.planner import MAX_READ_REGISTERS
from misto.edge.registers.profiles import builtin_profiles
from misto.edge.registers.rows import RegisterRow, overlap_problems
from misto.edge.registers.spec import Order, RegisterSpec


class ModbusDevice(DeviceBase):
    """What every Modbus device has, whatever the transport: unit id, timing and a register map
    (a built-in ``profile`` or inline ``registers``, whose rows take ``word_order`` and
    ``byte_order`` from the device unless they set their own)."""

    unit_id: StrictInt = Field(default=1, ge=0, le=255)
    timeout: Duration = Field(default=3.0, description="Per request, for each attempt")
    retries: StrictInt = Field(default=2, ge=0, le=10, description="Extra attempts after a timeout")
    profile: str | None = Field(default=None, description="Built-in register map (e.g. aq1, nm1)")
    registers: tuple[RegisterRow, ...] | None = None
    word_order: Order | None = Field(default=None, description="Default word order of inline registers (big)")
    byte_order: Order | None = Field(default=None, description="Default byte order of inline registers (big)")
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
        if self.profile is not None:
            for key in ("word_order", "byte_order"):
                if getattr(self, key) is not None:
                    raise ConfigProblem.at((key,), "a built-in profile fixes the layout: set it on inline registers")
        widest = max((spec.words for spec in self.specs() if not spec.table.is_bits), default=1)
        if widest > self.max_read_registers:
            raise ConfigProblem.at(
                ("max_read_registers",), f"must be at least {widest}: a value of this device spans {widest} registers"
            )
        return self

    def specs(self) -> tuple[RegisterSpec, ...]:
        """Every row of the register map: readings and attributes."""
        if self.profile is not None:
            return builtin_profiles()[self.profile].specs()
        words, bytes_ = self.word_order or Order.BIG, self.byte_order or Order.BIG
        return tuple(row.to_spec(word_order=words, byte_order=bytes_) for row in self.registers or ())

    def points(self) -> int:
        return sum(1 for spec in self.specs() if not spec.attribute)


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


RTU_TIMEOUT = 1.0
"""Default per-attempt timeout on a serial bus: a 125-register answer takes 0.3 s at 9600 baud, and
every second a dead device is waited for is a second the other devices on the bus wait too."""


class ModbusRtuDevice(ModbusDevice):
    """A Modbus RTU device on a serial line (RS-485 bus), addressed by ``unit_id``. Devices with the
    same ``serial.port`` share one bus: one request at a time, in turn."""

    driver: Literal["modbus_rtu"]
    serial: SerialLine
    unit_id: StrictInt = Field(default=1, ge=1, le=247, description="RTU unicast address 1-247")
    timeout: Duration = Field(default=RTU_TIMEOUT, description="Per request, for each attempt")

    @property
    def bus_key(self) -> str:
        return f"serial:{self.serial.port}"


class ModbusRtuOverTcpDevice(ModbusDevice):
    """A Modbus RTU device behind a transparent serial-to-TCP converter (RTU frames over TCP). Devices
    with the same ``host`` and ``port`` share the converter's bus, as on a serial line."""

    driver: Literal["modbus_rtu_tcp"]
    host: str = Field(min_length=1)
    port: StrictInt = Field(default=502, ge=1, le=65535)
    unit_id: StrictInt = Field(default=1, ge=1, le=247, description="RTU unicast address 1-247")
    timeout: Duration = Field(default=RTU_TIMEOUT, description="Per request, for each attempt")

    @property
    def bus_key(self) -> str:
        return f"tcp:{self.host}:{self.port}"


def serial_bus_problems(devices: Sequence[object]) -> Problems:
    """Problems with devices that share a bus, at ``("devices", index, ...)``: every ``modbus_rtu``
    device on one serial port must have the same line settings, and no two devices on one bus
    (a serial port, or an RTU-over-TCP converter) may have the same unit id.

    ``Settings`` calls this with its ``devices`` (other kinds of device are ignored).
    """
    problems: Problems = []
    first_line: dict[str, tuple[int, ModbusRtuDevice]] = {}
    units: dict[tuple[str, int], tuple[int, ModbusDevice]] = {}
    for i, device in enumerate(devices):
        if not isinstance(device, ModbusRtuDevice | ModbusRtuOverTcpDevice):
            continue
        if isinstance(device, ModbusRtuDevice):
            j, first = first_line.setdefault(device.serial.port, (i, device))
            for key in ("baudrate", "bytesize", "parity", "stopbits"):
                mine, theirs = getattr(device.serial, key), getattr(first.serial, key)
                if mine != theirs:
                    problems.append(
                        (
                            ("devices", i, "serial", key),
                            f"{mine} differs from devices[{j}] ({first.id!r}, {key} {theirs}) on the same port "
                            f"{device.serial.port}: every device on a bus must use the same line settings",
                        )
                    )
        j, other = units.setdefault((device.bus_key, device.unit_id), (i, device))
        if j != i:
            problems.append(
                (
                    ("devices", i, "unit_id"),
                    f"unit {device.unit_id} is already devices[{j}] ({other.id!r}) on the same bus",
                )
            )
    return problems
