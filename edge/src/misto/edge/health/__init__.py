"""Gateway health: the agent's own metrics as a protocol ``Health`` message published on the
``health`` channel, and the state file ``misto-edge status`` reads."""

from misto.edge.health.reporter import DeviceEntry, HealthReporter
from misto.edge.health.snapshot import HealthSources, build_health

__all__ = ["DeviceEntry", "HealthReporter", "HealthSources", "build_health"]
