"""Simulated Misto sensor firmware: device models declared as data, served over Modbus TCP or
RTU (on a pseudo-terminal, a serial device, or over TCP) with realistic daily patterns and
injectable faults. Embed it with :class:`Simulator` or :func:`run_devices`, or run the
``misto-sim`` command."""

from misto.sim.clock import Clock, ScaledClock, system_clock
from misto.sim.device import SimulatedDevice, Snapshot
from misto.sim.devices import MODELS, DeviceModel, RegisterTable, RegisterType, SimRegister, WordOrder, get_model
from misto.sim.errors import (
    EncodingError,
    ModelError,
    ServeError,
    SimError,
    SpecError,
    StateFileError,
    UnknownModelError,
)
from misto.sim.faults import Fault, FaultKind, FaultSpec, FaultState, parse_fault
from misto.sim.simulator import ServedDevice, Simulator, SimulatorStats, run_devices
from misto.sim.spec import DeviceSpec, SpecTransport, parse_device_spec, parse_device_specs

__all__ = [
    "MODELS",
    "Clock",
    "DeviceModel",
    "DeviceSpec",
    "EncodingError",
    "Fault",
    "FaultKind",
    "FaultSpec",
    "FaultState",
    "ModelError",
    "RegisterTable",
    "RegisterType",
    "ScaledClock",
    "ServeError",
    "ServedDevice",
    "SimError",
    "SimRegister",
    "SimulatedDevice",
    "Simulator",
    "SimulatorStats",
    "Snapshot",
    "SpecError",
    "SpecTransport",
    "StateFileError",
    "UnknownModelError",
    "WordOrder",
    "get_model",
    "parse_device_spec",
    "parse_device_specs",
    "parse_fault",
    "run_devices",
    "system_clock",
]
