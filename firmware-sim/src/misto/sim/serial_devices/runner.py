"""One simulated serial device on a pseudo-terminal: its values (from the model's signals), its
faults, and the message it sends at each tick."""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from misto.sim.errors import SpecError
from misto.sim.serial_devices import wire
from misto.sim.serial_devices.faults import FaultKind, Faults
from misto.sim.serial_devices.models import SERIAL_MODELS, SerialModel
from misto.sim.serial_devices.pty_endpoint import PtyEndpoint
from misto.sim.signals import SignalSet
from misto.sim.state_file import utc_text

FORMAT = "MODEL@PATH, e.g. sds011@/tmp/misto/ttyPM"
_SPEC = re.compile(r"^(?P<model>[A-Za-z0-9_-]+)@(?P<path>\S+)$")


@dataclass(frozen=True, slots=True)
class SerialSpec:
    """Serve ``model`` on a pseudo-terminal linked at ``path``."""

    model: str
    path: Path

    def __str__(self) -> str:
        return f"{self.model}@{self.path}"


def parse_serial_spec(text: str) -> SerialSpec:
    m = _SPEC.match(text.strip())
    if m is None:
        raise SpecError(text, f"expected {FORMAT}")
    if m["model"] not in SERIAL_MODELS:
        raise SpecError(text, f"unknown serial model {m['model']!r}; known: {', '.join(sorted(SERIAL_MODELS))}")
    return SerialSpec(m["model"], Path(m["path"]))


@dataclass(slots=True)
class MessageStats:
    messages: int = 0
    """Ticks at which something was sent."""
    good: int = 0
    """Messages a correct receiver decodes (a garbage prefix does not spoil an SDS011 frame)."""


class SerialDeviceRunner:
    """One device: :meth:`open` the terminal, then :meth:`tick` once per period (the caller keeps
    time); :meth:`update` refreshes the values at an instant of the simulated clock."""

    def __init__(
        self,
        spec: SerialSpec,
        *,
        seed: int,
        key: str | None = None,
        rates: dict[FaultKind, float] | None = None,
    ) -> None:
        self.spec = spec
        self.model: SerialModel = SERIAL_MODELS[spec.model]
        self.key = key or str(spec)
        self.sensor_id = random.Random(f"{seed}/{self.key}/id").randrange(1, 0xFFFF)  # noqa: S311 - simulation
        self.pty = PtyEndpoint(spec.path)
        self.faults = Faults(random.Random(f"{seed}/{self.key}/faults"), rates)  # noqa: S311
        self.messages = MessageStats()
        self._signals = SignalSet(
            [(m.metric, m.signal) for m in self.model.metrics],
            lambda metric: random.Random(f"{seed}/{self.key}/{metric}"),  # noqa: S311
        )
        self.values: dict[str, float] = {}
        self.values_at: datetime | None = None
        self.seq = 0
        self.last_good: dict[str, float] = {}

    def update(self, at: datetime) -> None:
        sampled = self._signals.sample(at)
        self.values = {m.metric: round(sampled[m.metric], m.decimals) for m in self.model.metrics}
        self.values_at = at
        self.seq += 1

    def open(self) -> None:
        self.pty.open()

    def serving_line(self) -> str:
        return f'serving {self.model.id} "{self.model.title}" on {self.spec.path} ({self.pty.slave_name})'

    def tick(self, now: float) -> bytes:
        """Send the message due at monotonic time ``now`` (spoilt by a fault, perhaps); returns what was sent."""
        message = self.model.encode(self.values, self.sensor_id)
        fault = self.faults.next(now)
        stats = self.faults.stats
        good = fault is None
        match fault:
            case None:
                out = message
            case FaultKind.GARBAGE:
                out = self.faults.garbage() + message
                good = not self.model.garbage_spoils
            case FaultKind.CORRUPT:
                out = self.model.corrupt(message)
                stats.corrupted += 1
            case FaultKind.TRUNCATE:
                out = wire.truncated(message, self.faults.rng.randint(2, len(message) - 2))
                stats.truncated += 1
            case FaultKind.SILENCE:
                out = b""
                stats.silent_messages += 1
        if out:
            self.messages.messages += 1
            self.pty.write(out)
        if good:
            self.messages.good += 1
            self.last_good = dict(self.values)
        return out

    def state(self, now: float) -> dict[str, Any]:
        """What a test compares with: the values being sent, counts of what was sent and injected."""
        return {
            "model": self.model.id,
            "path": str(self.spec.path),
            "tty": self.pty.slave_name,
            "sensor_id": self.sensor_id,
            "seq": self.seq,
            "values_at": utc_text(self.values_at) if self.values_at else None,
            "values": dict(self.values),
            "last_good": dict(self.last_good),
            "sent": asdict(self.messages),
            "faults": asdict(self.faults.stats),
            "pending_faults": self.faults.pending(),
            "silent_for": round(self.faults.silent_for(now), 3),
            "bytes": {
                "written": self.pty.bytes_written,
                "dropped": self.pty.bytes_dropped,
                "received": self.pty.bytes_received,
            },
        }

    def close(self) -> None:
        self.pty.close()
