"""The ``buffer:`` section of the gateway configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from misto.edge.buffer.base import BufferLimits, DropPolicy, SyncMode
from misto.edge.config_model import ConfigModel, StrictInt
from misto.edge.durations import Duration
from misto.edge.sizes import ByteSize

#: kind -> (max_messages, max_bytes) when not configured
DEFAULT_LIMITS = {"sqlite": (1_000_000, 1024**3), "memory": (10_000, 64 * 1024**2)}
WEEK = 7 * 24 * 3600.0


class BufferSettings(ConfigModel):
    """Where telemetry waits for the broker's acknowledgement, and how much of it may wait."""

    kind: Literal["sqlite", "memory"] = Field(
        default="sqlite", description="sqlite: on disk, survives restarts and power cuts; memory: lost on restart"
    )
    path: Path | None = Field(default=None, description="The SQLite file; default <state_dir>/buffer.db")
    max_messages: StrictInt | None = Field(default=None, ge=1, description="Default 1000000 (sqlite), 10000 (memory)")
    max_bytes: ByteSize | None = Field(default=None, description="Payload bytes; default 1GB (sqlite), 64MB (memory)")
    max_age: Duration = Field(default=WEEK, description="Unsent messages older than this are dropped (counted)")
    when_full: DropPolicy = Field(default=DropPolicy.DROP_OLDEST, description="drop_oldest | drop_newest")
    sync: SyncMode = Field(default=SyncMode.FULL, description="full: fsync every append; normal: at checkpoints")
    replay_rate: float = Field(default=50.0, gt=0, description="Messages/s when sending what waited during an outage")

    def limits(self) -> BufferLimits:
        messages, size = DEFAULT_LIMITS[self.kind]
        return BufferLimits(
            max_messages=self.max_messages or messages,
            max_bytes=self.max_bytes or size,
            max_age=self.max_age,
            when_full=self.when_full,
        )
