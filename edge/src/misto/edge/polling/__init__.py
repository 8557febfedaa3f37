"""Polling: the coordinator that reads devices on a fixed, drift-free schedule and turns each cycle
into one telemetry message, and the health it keeps per device."""

from misto.edge.polling.coordinator import PollCoordinator, PollStats
from misto.edge.polling.health import DeviceHealth, DeviceState

__all__ = ["DeviceHealth", "DeviceState", "PollCoordinator", "PollStats"]
