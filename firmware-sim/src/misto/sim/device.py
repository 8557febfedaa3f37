"""A running instance of a device model: its signals, its current register values, the values
written to it, and the count of values that did not fit their registers. Transports read
:attr:`SimulatedDevice.snapshot` (through :mod:`misto.sim.modbus.responder`) and frame it their
own way; faults such as a dropout sit between the two, not in the model."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from misto.sim.devices.model import DeviceModel, SimRegister
from misto.sim.encoding import Quantized, decoded_value, quantize
from misto.sim.signals import SignalSet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The device's registers at one instant. ``seq`` grows by one per update (or write)."""

    seq: int
    at: datetime
    engineering: Mapping[str, float]
    quantized: Mapping[str, Quantized]

    @property
    def values(self) -> dict[str, float]:
        """What a correct decoder reads from each row (by key), in register-map order."""
        return {key: q.value for key, q in self.quantized.items()}


class SimulatedDevice:
    """One device instance. ``key`` names the instance (for instance ``aq1@127.0.0.1:5020/1``)
    and, with ``seed``, fixes its random generators: the same seed, key and sequence of
    instants give the same values.

    A value written to a writable row (:meth:`write`) replaces its signal from then on, as a
    set point does on a real device."""

    def __init__(self, model: DeviceModel, *, seed: int, key: str) -> None:
        self.model = model
        self.key = key
        self.clamps: Counter[str] = Counter()
        self.writes = 0
        self._order = model.evaluation_order()
        self._signals = SignalSet(
            [(reg.key, reg.signal) for reg in self._order],
            # str seeds hash with SHA-512: stable across runs and Python versions. Simulated
            # noise, not cryptography.
            lambda name: random.Random(f"{seed}/{key}/{name}"),  # noqa: S311
        )
        self._written: dict[str, int | float] = {}
        self._snapshot: Snapshot | None = None

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest values, or ``None`` before the first :meth:`update`."""
        return self._snapshot

    def update(self, at: datetime) -> Snapshot:
        """Compute every metric at ``at`` and quantize it into its register."""
        engineering = self._signals.sample(at)
        quantized: dict[str, Quantized] = {}
        for reg in self.model.registers:
            written = self._written.get(reg.key)
            if written is not None:
                quantized[reg.key] = Quantized(raw=written, value=decoded_value(reg, written), clamped=False)
                continue
            q = quantize(reg, engineering[reg.key])
            if q.clamped:
                if not self.clamps[reg.key]:
                    log.warning(
                        "%s: %s=%r does not fit %s with scale %g; clamped (counted in clamps)",
                        self.key,
                        reg.key,
                        engineering[reg.key],
                        reg.type,
                        reg.scale,
                    )
                self.clamps[reg.key] += 1
            quantized[reg.key] = q
        return self._publish(at, engineering, quantized)

    def write(self, values: Mapping[SimRegister, int | float]) -> Snapshot:
        """Hold the raw ``values`` in their (writable) rows from now on; the snapshot changes at once."""
        snapshot = self._snapshot
        if snapshot is None:
            raise RuntimeError("write before the first update")
        quantized = dict(snapshot.quantized)
        for reg, raw in values.items():
            if not reg.writable:
                raise ValueError(f"{self.model.id}.{reg.key} is not writable")
            self._written[reg.key] = raw
            quantized[reg.key] = Quantized(raw=raw, value=decoded_value(reg, raw), clamped=False)
        self.writes += 1
        return self._publish(snapshot.at, snapshot.engineering, quantized)

    def _publish(self, at: datetime, engineering: Mapping[str, float], quantized: dict[str, Quantized]) -> Snapshot:
        seq = 1 if self._snapshot is None else self._snapshot.seq + 1
        self._snapshot = Snapshot(
            seq=seq, at=at, engineering=MappingProxyType(dict(engineering)), quantized=MappingProxyType(quantized)
        )
        return self._snapshot
