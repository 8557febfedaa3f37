"""What every device's configuration has, whatever its driver."""

from __future__ import annotations

from pydantic import Field

from misto.edge.config_model import DEVICE_ID_PATTERN, ConfigModel
from misto.edge.device_config.report import ReportSettings
from misto.edge.durations import Duration


class DeviceBase(ConfigModel):
    """Keys shared by every driver. Each driver's settings model subclasses this and adds its
    ``driver: Literal["<name>"]`` and its own keys."""

    id: str = Field(pattern=DEVICE_ID_PATTERN, description="Unique device id (city-wide)")
    poll_interval: Duration | None = Field(default=None, description="Overrides the gateway's poll_interval")
    report: ReportSettings | None = Field(default=None, description="Report by exception; default: every reading")

    def points(self) -> int:
        """How many readings one poll of this device yields at most (for summaries)."""
        raise NotImplementedError
