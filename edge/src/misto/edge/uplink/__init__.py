"""Uplinks deliver buffered messages to the cloud. ``misto.edge.uplink.mqtt`` is the only module
that imports paho-mqtt."""

from misto.edge.uplink.base import Uplink, UplinkStats

__all__ = ["Uplink", "UplinkStats"]
