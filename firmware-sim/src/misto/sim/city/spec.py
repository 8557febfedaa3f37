"""What a simulated city is made of: how many gateways and devices, which models in what shares,
how often they are polled, and how often things go wrong. :func:`layout` turns a spec into the
same named gateways and devices every time (the seed decides which device is which model).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from misto.protocol.messages import MAX_HEALTH_DEVICES, MAX_READINGS
from misto.sim.devices import MODELS
from misto.sim.devices.pb1 import BAYS
from misto.sim.errors import SimError

CAMERA = "cam1"
"""A street camera counting people and vehicles (its counts, not its frames: see :mod:`.sensors`)."""

#: Default share of each model among a city's devices. ``tb1`` (the Modbus test bench, every
#: register type and order with constant values) is a bench fixture, not a street sensor: not
#: in a city unless asked for.
DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("aq1", 0.20),
    ("nm1", 0.15),
    ("tc1", 0.15),
    ("pb1", 0.10),
    ("wb1", 0.30),
    (CAMERA, 0.10),
)
CITY_MODELS = frozenset(MODELS) | {CAMERA}


class Transport(StrEnum):
    """How a gateway reaches a device; sets the simulated poll latency."""

    TCP = "tcp"
    RTU = "rtu"
    HTTP = "http"


_TRANSPORT = {"aq1": Transport.TCP, "nm1": Transport.TCP, "tb1": Transport.TCP, CAMERA: Transport.HTTP}


class CitySpecError(SimError):
    """A city spec cannot be built; ``problems`` lists every reason, each naming its field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid city spec:\n  " + "\n  ".join(problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class CitySpec:
    """A city of ``devices`` devices spread evenly over ``gateways`` gateways.

    ``poll_interval_s``: one poll cycle (and one or more telemetry messages) per gateway per
    interval. ``health_every``: a health message every N poll cycles. ``max_readings`` splits a
    gateway's cycle into messages of at most that many readings, as a gateway batches them.
    ``outages_per_day``: link outages per gateway per day on average (the gateway buffers and
    sends late); ``poll_failure_rate``: the chance one poll of one device fails;
    ``dropouts_per_day``: per device, how often it goes silent for 15 min to 2 h."""

    gateways: int = 20
    devices: int = 1000
    seed: int = 1
    poll_interval_s: float = 300.0
    health_every: int = 1
    max_readings: int = 500
    mix: tuple[tuple[str, float], ...] = DEFAULT_MIX
    outages_per_day: float = 0.5
    poll_failure_rate: float = 0.005
    dropouts_per_day: float = 0.1
    agent_version: str = "0.1.0"

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise CitySpecError(problems)

    def _problems(self) -> list[str]:
        out: list[str] = []
        if self.gateways < 1:
            out.append(f"gateways: must be at least 1, got {self.gateways}")
        if self.devices < 1:
            out.append(f"devices: must be at least 1, got {self.devices}")
        elif self.gateways >= 1 and -(-self.devices // self.gateways) > MAX_HEALTH_DEVICES:
            out.append(
                f"devices: {self.devices} over {self.gateways} gateways is more than {MAX_HEALTH_DEVICES} "
                "per gateway (the health message's limit); add gateways"
            )
        if not self.poll_interval_s >= 1.0:
            out.append(f"poll_interval_s: must be at least 1 s, got {self.poll_interval_s}")
        if self.health_every < 1:
            out.append(f"health_every: must be at least 1, got {self.health_every}")
        if not 2 * (BAYS + 2) <= self.max_readings <= MAX_READINGS:
            out.append(f"max_readings: must be {2 * (BAYS + 2)}..{MAX_READINGS}, got {self.max_readings}")
        return out + self._mix_problems() + self._rate_problems()

    def _mix_problems(self) -> list[str]:
        out = [] if self.mix else ["mix: needs at least one model"]
        for i, (model, share) in enumerate(self.mix):
            if model not in CITY_MODELS:
                out.append(f"mix[{i}]: unknown model {model!r}; known: {', '.join(sorted(CITY_MODELS))}")
            if not share > 0:
                out.append(f"mix[{i}]: share of {model!r} must be positive, got {share}")
        return out

    def _rate_problems(self) -> list[str]:
        out = [
            f"{name}: must be zero or more, got {getattr(self, name)}"
            for name in ("outages_per_day", "dropouts_per_day")
            if not getattr(self, name) >= 0
        ]
        if not 0 <= self.poll_failure_rate < 1:
            out.append(f"poll_failure_rate: must be in [0, 1), got {self.poll_failure_rate}")
        return out


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """One device of the city: ``id`` is unique city-wide, ``model`` a simulator model or ``cam1``."""

    id: str
    model: str
    gateway: str
    index: int

    @property
    def transport(self) -> Transport:
        return _TRANSPORT.get(self.model, Transport.RTU)


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    id: str
    devices: tuple[DevicePlan, ...] = field(default=())


def gateway_id(n: int) -> str:
    return f"gw-{n:03d}"


def apportion(total: int, mix: tuple[tuple[str, float], ...]) -> dict[str, int]:
    """``total`` split by the shares in ``mix`` (largest remainder; every model with a share gets
    at least one device when ``total`` allows)."""
    weight = sum(share for _, share in mix)
    exact = [(model, total * share / weight) for model, share in mix]
    counts = {model: int(x) for model, x in exact}
    by_remainder = sorted(exact, key=lambda item: item[1] - int(item[1]), reverse=True)
    for model, _ in by_remainder[: total - sum(counts.values())]:
        counts[model] += 1
    for model, _ in mix:  # a small city still shows every kind
        if counts[model] == 0:
            donor = max(counts, key=lambda m: counts[m])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[model] = 1
    return counts


def layout(spec: CitySpec) -> tuple[GatewayPlan, ...]:
    """The city's gateways and their devices. Device ``i`` (in a seeded shuffle of the models)
    goes to gateway ``i mod gateways``, so every gateway carries a mix of kinds."""
    counts = apportion(spec.devices, spec.mix)
    models = [model for model, _ in spec.mix for _ in range(counts[model])]
    random.Random(f"{spec.seed}/layout").shuffle(models)  # noqa: S311 - a simulation, not cryptography
    per_gateway: list[list[DevicePlan]] = [[] for _ in range(spec.gateways)]
    numbers: dict[str, int] = {}
    for i, model in enumerate(models):
        numbers[model] = numbers.get(model, 0) + 1
        gw = i % spec.gateways
        per_gateway[gw].append(DevicePlan(f"{model}-{numbers[model]:04d}", model, gateway_id(gw + 1), i))
    return tuple(GatewayPlan(gateway_id(n + 1), tuple(devs)) for n, devs in enumerate(per_gateway))
