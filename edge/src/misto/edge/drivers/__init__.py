"""Device drivers, registered by the name used in ``driver:``. Drivers are imported only when a
device uses them, so a gateway without Modbus devices never loads pymodbus."""

from __future__ import annotations

from importlib import import_module
from types import MappingProxyType

from misto.edge.clock import Clock
from misto.edge.device_config import DeviceSettings
from misto.edge.drivers.base import Driver

BUILTIN_DRIVERS = MappingProxyType(
    {
        "modbus_tcp": "misto.edge.drivers.modbus.tcp:ModbusTcpDriver",
        "modbus_rtu": "misto.edge.drivers.modbus.rtu:ModbusRtuDriver",
        "modbus_rtu_tcp": "misto.edge.drivers.modbus.rtu:ModbusRtuOverTcpDriver",
        "sds011": "misto.edge.drivers.serial_line.driver:Sds011Driver",
        "ascii_lines": "misto.edge.drivers.serial_line.driver:AsciiLinesDriver",
        "camera": "misto.edge.drivers.camera.driver:CameraDriver",
    }
)


def driver_class(kind: str) -> type[Driver]:
    """The driver class registered as ``kind``; :class:`KeyError` naming the known drivers otherwise."""
    try:
        target = BUILTIN_DRIVERS[kind]
    except KeyError:
        raise KeyError(f"unknown driver {kind!r}; known drivers: {', '.join(sorted(BUILTIN_DRIVERS))}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Driver) and cls.kind == kind):
        raise TypeError(f"{target} is not a Driver registered as {kind!r}")
    return cls


def create_driver(device: DeviceSettings, *, clock: Clock) -> Driver:
    """A driver for ``device`` (configuration checked, no I/O yet)."""
    return driver_class(device.driver)(device, clock=clock)


__all__ = ["BUILTIN_DRIVERS", "Driver", "create_driver", "driver_class"]
