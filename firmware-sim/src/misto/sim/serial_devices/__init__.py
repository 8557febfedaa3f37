"""Raw serial devices on pseudo-terminals: the Nova Fitness SDS011 particulate sensor (binary
frames) and the Misto NM-2 noise meter (ASCII lines), streaming once a second with the same daily
patterns as the Modbus models, with injectable faults (garbage bytes, corrupted and truncated
messages, silence). ``misto-sim serial`` runs them; see firmware-sim/README.md for the wire formats."""

from misto.sim.serial_devices.models import SERIAL_MODELS, SerialMetric, SerialModel, get_serial_model
from misto.sim.serial_devices.runner import SerialDeviceRunner, SerialSpec, parse_serial_spec

__all__ = [
    "SERIAL_MODELS",
    "SerialDeviceRunner",
    "SerialMetric",
    "SerialModel",
    "SerialSpec",
    "get_serial_model",
    "parse_serial_spec",
]
