"""The simulated device models, declared as data and registered by name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from misto.sim.devices.aq1 import AQ1
from misto.sim.devices.model import (
    ByteOrder,
    DeviceModel,
    RegisterTable,
    RegisterType,
    SimRegister,
    SimText,
    Transport,
    TypeInfo,
    ValueKind,
    WordOrder,
)
from misto.sim.devices.nm1 import NM1
from misto.sim.devices.pb1 import PB1
from misto.sim.devices.tb1 import TB1
from misto.sim.devices.tc1 import TC1
from misto.sim.devices.wb1 import WB1
from misto.sim.errors import UnknownModelError

MODELS: Mapping[str, DeviceModel] = MappingProxyType({m.id: m for m in (AQ1, NM1, TC1, PB1, WB1, TB1)})


def get_model(name: str) -> DeviceModel:
    """The model called ``name``; :class:`UnknownModelError` naming the known ones if none."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(name, sorted(MODELS)) from None


__all__ = [
    "MODELS",
    "ByteOrder",
    "DeviceModel",
    "RegisterTable",
    "RegisterType",
    "SimRegister",
    "SimText",
    "Transport",
    "TypeInfo",
    "ValueKind",
    "WordOrder",
    "get_model",
]
