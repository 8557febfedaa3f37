"""The simulated device models, declared as data and registered by name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from misto.sim.devices.aq1 import AQ1
from misto.sim.devices.model import (
    DeviceModel,
    RegisterTable,
    RegisterType,
    SimRegister,
    TypeInfo,
    ValueKind,
    WordOrder,
)
from misto.sim.devices.nm1 import NM1
from misto.sim.errors import UnknownModelError

MODELS: Mapping[str, DeviceModel] = MappingProxyType({m.id: m for m in (AQ1, NM1)})


def get_model(name: str) -> DeviceModel:
    """The model called ``name``; :class:`UnknownModelError` naming the known ones if none."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(name, sorted(MODELS)) from None


__all__ = [
    "MODELS",
    "DeviceModel",
    "RegisterTable",
    "RegisterType",
    "SimRegister",
    "TypeInfo",
    "ValueKind",
    "WordOrder",
    "get_model",
]
