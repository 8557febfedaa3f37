"""Device configuration: one settings model per driver, chosen by the ``driver:`` key.

A new driver adds its model (a subclass of :class:`DeviceBase` with ``driver: Literal["name"]``)
to the ``DeviceSettings`` union and to :data:`DEVICE_MODELS`; error paths stay
``devices[3].host`` (the union's tag is dropped from them).
"""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field

from misto.edge.device_config.base import DeviceBase
from misto.edge.device_config.camera import CameraDevice
from misto.edge.device_config.modbus import (
    ModbusDevice,
    ModbusRtuDevice,
    ModbusRtuOverTcpDevice,
    ModbusTcpDevice,
    SerialLine,
)
from misto.edge.device_config.serial import AsciiLinesDevice, Sds011Device

DeviceSettings = Annotated[
    ModbusTcpDevice | ModbusRtuDevice | ModbusRtuOverTcpDevice | Sds011Device | AsciiLinesDevice | CameraDevice,
    Field(discriminator="driver"),
]
DEVICE_MODELS: tuple[type[DeviceBase], ...] = get_args(get_args(DeviceSettings)[0])
DRIVER_NAMES: frozenset[str] = frozenset(get_args(m.model_fields["driver"].annotation)[0] for m in DEVICE_MODELS)

__all__ = [
    "DEVICE_MODELS",
    "DRIVER_NAMES",
    "AsciiLinesDevice",
    "CameraDevice",
    "DeviceBase",
    "DeviceSettings",
    "ModbusDevice",
    "ModbusRtuDevice",
    "ModbusRtuOverTcpDevice",
    "ModbusTcpDevice",
    "Sds011Device",
    "SerialLine",
]
