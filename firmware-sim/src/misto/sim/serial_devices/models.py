"""The serial device models, declared as data: what each measures (the signals of the Modbus
models it resembles, so the daily patterns are the same), at what resolution, and how it frames
a measurement on the wire."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from misto.protocol.vocabulary import METRICS
from misto.sim.devices.aq1 import AQ1
from misto.sim.devices.nm1 import NM1
from misto.sim.errors import ModelError, UnknownModelError
from misto.sim.serial_devices import wire
from misto.sim.signals import Daily, Ratio, Signal

Encoder = Callable[[Mapping[str, float], int], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialMetric:
    """One value the device sends, with ``decimals`` of resolution (tenths: 1), carrying ``signal``
    (computed in declaration order, so a metric may be computed from an earlier one)."""

    metric: str
    unit: str
    decimals: int
    signal: Signal


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialModel:
    """A streaming serial device: ``encode(values, sensor_id)`` gives one message; ``corrupt``
    spoils a message the way a line fault would (bad checksum, malformed text)."""

    id: str
    title: str
    wire: str
    """One line for people: the framing."""
    baudrate: int
    metrics: tuple[SerialMetric, ...]
    encode: Encoder
    corrupt: Callable[[bytes], bytes]
    garbage_spoils: bool
    """Whether garbage before a message spoils it (an ASCII line) or not (a frame found by its header)."""

    def __post_init__(self) -> None:
        problems = []
        known: set[str] = set()
        for i, m in enumerate(self.metrics):
            where = f"{self.id}.metrics[{i}]"
            vocab = METRICS.get(m.metric)
            if vocab is None:
                problems.append(f"{where}.metric: {m.metric!r} is not in the protocol vocabulary")
            elif vocab.unit != m.unit:
                problems.append(f"{where}.unit: metric {m.metric!r} is measured in {vocab.unit!r}, not {m.unit!r}")
            missing = [name for name in m.signal.inputs if name not in known]
            if missing:
                problems.append(f"{where}.signal: computed from {missing}, which must come earlier")
            known.add(m.metric)
        if problems:
            raise ModelError(self.id, problems)


def _capped(signal: Signal, ceiling: float) -> Signal:
    """``signal`` with a lower measuring range (a different sensor of the same quantity)."""
    assert isinstance(signal, Daily | Ratio)
    return dataclasses.replace(signal, ceiling=min(signal.ceiling, ceiling))


def _sds011_encode(values: Mapping[str, float], sensor_id: int) -> bytes:
    return wire.sds011_frame(values, sensor_id)


def _noise_encode(values: Mapping[str, float], sensor_id: int) -> bytes:
    return wire.noise_line(values)


# The SDS011 measures 0.0-999.9 µg/m³ for both fractions.
SDS011 = SerialModel(
    id="sds011",
    title="Nova Fitness SDS011 particulate sensor",
    wire="binary 10-byte frames, 9600 8N1, one a second (active reporting mode)",
    baudrate=9600,
    metrics=(
        SerialMetric(metric="pm25", unit="ug/m3", decimals=1, signal=_capped(AQ1.register("pm25").signal, 999.9)),
        SerialMetric(metric="pm10", unit="ug/m3", decimals=1, signal=_capped(AQ1.register("pm10").signal, 999.9)),
    ),
    encode=_sds011_encode,
    corrupt=wire.sds011_corrupt,
    garbage_spoils=False,
)

NM2 = SerialModel(
    id="nm2",
    title="Misto NM-2 noise meter (ASCII)",
    wire="ASCII lines 'LAeq=63.4 LAmax=71.2 dB(A)' + CR LF, 9600 8N1, one a second",
    baudrate=9600,
    metrics=(
        SerialMetric(metric="LAeq", unit="dB(A)", decimals=1, signal=NM1.register("LAeq").signal),
        SerialMetric(metric="LAmax", unit="dB(A)", decimals=1, signal=NM1.register("LAmax").signal),
    ),
    encode=_noise_encode,
    corrupt=wire.noise_corrupt,
    garbage_spoils=True,
)

SERIAL_MODELS: Mapping[str, SerialModel] = MappingProxyType({m.id: m for m in (SDS011, NM2)})


def get_serial_model(name: str) -> SerialModel:
    try:
        return SERIAL_MODELS[name]
    except KeyError:
        raise UnknownModelError(name, sorted(SERIAL_MODELS)) from None
