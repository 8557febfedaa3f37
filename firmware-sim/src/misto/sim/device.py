"""A running instance of a device model: its signals, its current register values, and the
count of values that did not fit their registers. Transports (Modbus TCP today; RTU and raw
serial later) read :attr:`SimulatedDevice.snapshot` and frame it their own way; faults such
as a stuck value or a dropout belong between the two, not in the model."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from misto.sim.devices.model import DeviceModel
from misto.sim.encoding import Quantized, quantize
from misto.sim.signals import SignalSet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The device's registers at one instant. ``seq`` grows by one per update."""

    seq: int
    at: datetime
    engineering: Mapping[str, float]
    quantized: Mapping[str, Quantized]

    @property
    def values(self) -> dict[str, float]:
        """What a correct decoder reads from each metric's registers, in register-map order."""
        return {metric: q.value for metric, q in self.quantized.items()}


class SimulatedDevice:
    """One device instance. ``key`` names the instance (for instance ``aq1@127.0.0.1:5020/1``)
    and, with ``seed``, fixes its random generators: the same seed, key and sequence of
    instants give the same values."""

    def __init__(self, model: DeviceModel, *, seed: int, key: str) -> None:
        self.model = model
        self.key = key
        self.clamps: Counter[str] = Counter()
        self._order = model.evaluation_order()
        self._signals = SignalSet(
            [(reg.metric, reg.signal) for reg in self._order],
            # str seeds hash with SHA-512: stable across runs and Python versions. Simulated
            # noise, not cryptography.
            lambda metric: random.Random(f"{seed}/{key}/{metric}"),  # noqa: S311
        )
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
            q = quantize(reg, engineering[reg.metric])
            if q.clamped:
                if not self.clamps[reg.metric]:
                    log.warning(
                        "%s: %s=%r does not fit %s with scale %g; clamped (counted in clamps)",
                        self.key,
                        reg.metric,
                        engineering[reg.metric],
                        reg.type,
                        reg.scale,
                    )
                self.clamps[reg.metric] += 1
            quantized[reg.metric] = q
        seq = 1 if self._snapshot is None else self._snapshot.seq + 1
        self._snapshot = Snapshot(
            seq=seq,
            at=at,
            engineering=MappingProxyType(engineering),
            quantized=MappingProxyType(quantized),
        )
        return self._snapshot
