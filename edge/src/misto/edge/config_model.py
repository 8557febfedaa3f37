"""The base of every configuration model: frozen, unknown keys refused, strict whole numbers."""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import BaseModel, ConfigDict, Field

from misto.protocol import messages

DEVICE_ID_PATTERN: str = get_args(messages.DeviceId)[1].pattern
StrictInt = Annotated[int, Field(strict=True)]
Problems = list[tuple[tuple[int | str, ...], str]]


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
