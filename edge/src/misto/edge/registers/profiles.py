"""Built-in register maps of the devices Misto ships with, stored as data (``misto/edge/profiles/*.yaml``)
and checked by the same model as inline ``registers:``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from misto.edge.config_errors import ConfigProblem, issues_from_validation_error, parse_yaml
from misto.edge.errors import ConfigError
from misto.edge.registers.rows import RegisterRow, overlap_problems
from misto.edge.registers.spec import Order, RegisterSpec


class Profile(BaseModel):
    """A device model's register map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    description: str
    word_order: Order = Field(default=Order.BIG, description="Default for rows that do not set their own")
    byte_order: Order = Field(default=Order.BIG, description="Default for rows that do not set their own")
    registers: tuple[RegisterRow, ...]

    @field_validator("registers")
    @classmethod
    def _no_overlaps(cls, rows: tuple[RegisterRow, ...]) -> tuple[RegisterRow, ...]:
        if not rows:
            raise ValueError("must list at least one register")
        if problems := overlap_problems(rows):
            raise ConfigProblem(problems)
        return rows

    def specs(self) -> tuple[RegisterSpec, ...]:
        return tuple(row.to_spec(word_order=self.word_order, byte_order=self.byte_order) for row in self.registers)


@cache
def builtin_profiles() -> Mapping[str, Profile]:
    """Every built-in profile by model name. A broken profile file is a bug: it raises :class:`ConfigError`."""
    found: dict[str, Profile] = {}
    folder = resources.files("misto.edge").joinpath("profiles")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        source = f"misto/edge/profiles/{entry.name}"
        document = parse_yaml(entry.read_text(encoding="utf-8"), source=source)
        try:
            profile = Profile.model_validate(document.data)
        except ValidationError as exc:
            raise ConfigError(issues_from_validation_error(exc, document.locate), source=source) from None
        found[profile.model] = profile
    return MappingProxyType(found)


def profile_names() -> list[str]:
    return sorted(builtin_profiles())
