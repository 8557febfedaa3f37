"""Injectable faults: what goes wrong with real field devices, per device, decided per request.

==============  ===============================================  =====================================
kind            what the master sees                             parameters (all optional but delay)
==============  ===============================================  =====================================
``stuck``       the values stop changing                         window
``dropout``     no answer, with probability ``p``                ``p`` (1), window
``slow``        the answer comes ``delay`` seconds late          ``delay``, ``p`` (1), window
``crc``         a frame with a wrong CRC (RTU transports)        ``p`` (1), window
``garbage``     ``bytes`` random bytes before the answer (RTU)   ``bytes`` (4), ``p`` (1), window
``exception``   exception response ``code``                      ``code`` (4), ``p`` (1), window
``power-loss``  silence, for the whole window                    window
==============  ===============================================  =====================================

The window says when a fault is on, in seconds since it was added (since the start for faults
given on the command line): from ``after`` (0) for ``for`` seconds (for ever), repeating
``every`` seconds if given. Written on the command line as ``TARGET:KIND[:KEY=VALUE,...]``,
for instance ``tc1@pty:/tmp/bus/3:dropout:p=0.3`` or ``wb1@pty:/tmp/bus/4:power-loss:after=10,for=5,every=60``.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from misto.sim.errors import SpecError


class FaultKind(StrEnum):
    STUCK = "stuck"
    DROPOUT = "dropout"
    SLOW = "slow"
    CRC = "crc"
    GARBAGE = "garbage"
    EXCEPTION = "exception"
    POWER_LOSS = "power-loss"

    @property
    def needs_rtu(self) -> bool:
        """Faults of the RTU framing itself, which Modbus TCP (with no CRC) cannot show."""
        return self in (FaultKind.CRC, FaultKind.GARBAGE)


_WINDOW = ("after", "for", "every")
_PARAMS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.STUCK: _WINDOW,
    FaultKind.DROPOUT: ("p", *_WINDOW),
    FaultKind.SLOW: ("delay", "p", *_WINDOW),
    FaultKind.CRC: ("p", *_WINDOW),
    FaultKind.GARBAGE: ("bytes", "p", *_WINDOW),
    FaultKind.EXCEPTION: ("code", "p", *_WINDOW),
    FaultKind.POWER_LOSS: _WINDOW,
}
FORMAT = "TARGET:KIND[:KEY=VALUE,...], e.g. tc1@pty:/tmp/misto-bus/3:dropout:p=0.5"
_FAULT = re.compile(rf"^(?P<target>.+?):(?P<kind>{'|'.join(k.value for k in FaultKind)})(?::(?P<params>.*))?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault of one device (see the module's table)."""

    kind: FaultKind
    p: float = 1.0
    delay: float = 0.0
    code: int = 4
    size: int = 4
    after: float = 0.0
    duration: float = math.inf
    every: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.p <= 1.0:
            problems.append(f"p must be within 0..1, not {self.p:g}")
        if self.kind is FaultKind.SLOW and not self.delay > 0:
            problems.append("slow needs delay=SECONDS (more than 0)")
        if not 1 <= self.code <= 255:
            problems.append(f"code must be an exception code 1..255, not {self.code}")
        if not 1 <= self.size <= 64:
            problems.append(f"bytes must be within 1..64, not {self.size}")
        if self.after < 0 or not self.duration > 0 or (self.every is not None and not self.every >= self.duration):
            problems.append("the window needs after >= 0, for > 0 and every >= for")
        if problems:
            raise ValueError("; ".join(problems))

    def active(self, elapsed: float) -> bool:
        """Whether the fault is on ``elapsed`` seconds after it was added."""
        if elapsed < self.after:
            return False
        t = elapsed - self.after
        if self.every is not None:
            t %= self.every
        return t < self.duration

    def __str__(self) -> str:
        params: dict[str, float | None] = {"p": self.p, "delay": self.delay, "code": self.code, "bytes": self.size}
        params |= {"after": self.after, "for": self.duration, "every": self.every}
        defaults: dict[str, float | None] = {"p": 1.0, "delay": 0.0, "code": 4, "bytes": 4, "after": 0.0}
        defaults |= {"for": math.inf, "every": None}
        shown = [
            f"{k}={v:g}" for k, v in params.items() if k in _PARAMS[self.kind] and v != defaults[k] and v is not None
        ]
        return self.kind.value + (":" + ",".join(shown) if shown else "")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault for the device the ``target`` spec names (as written in ``--device``)."""

    target: str
    fault: Fault


def parse_fault(text: str) -> FaultSpec:
    """Parse ``TARGET:KIND[:KEY=VALUE,...]``; :class:`SpecError` says what is wrong."""
    m = _FAULT.match(text.strip())
    if m is None:
        kinds = ", ".join(k.value for k in FaultKind)
        raise SpecError(text, f"expected {FORMAT} (kinds: {kinds})")
    kind = FaultKind(m["kind"])
    values: dict[str, float] = {}
    for item in filter(None, (m["params"] or "").split(",")):
        key, sep, raw = item.partition("=")
        if not sep or key not in _PARAMS[kind]:
            raise SpecError(text, f"{kind} takes {', '.join(f'{k}=' for k in _PARAMS[kind])}; not {item!r}")
        try:
            values[key] = float(raw)
        except ValueError:
            raise SpecError(text, f"{key}={raw!r} is not a number") from None
    for whole in ("code", "bytes"):
        if whole in values and not values[whole].is_integer():
            raise SpecError(text, f"{whole} must be a whole number")
    try:
        fault = Fault(
            kind=kind,
            p=values.get("p", 1.0),
            delay=values.get("delay", 0.0),
            code=int(values.get("code", 4)),
            size=int(values.get("bytes", 4)),
            after=values.get("after", 0.0),
            duration=values.get("for", math.inf),
            every=values.get("every"),
        )
    except ValueError as exc:
        raise SpecError(text, str(exc)) from None
    return FaultSpec(target=m["target"], fault=fault)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: stay ``silent``, or answer after ``delay`` seconds with
    ``exception`` (a code) or the real answer, its CRC ``corrupt``, after ``garbage`` random bytes."""

    silent: bool = False
    delay: float = 0.0
    exception: int | None = None
    corrupt: bool = False
    garbage: bytes = b""


ANSWER = Decision()


@dataclass
class FaultState:
    """The faults of one device and what they did (``counts`` by kind, and ``requests``)."""

    rng: random.Random
    monotonic: Callable[[], float] = time.monotonic
    faults: list[tuple[float, Fault]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, fault: Fault) -> None:
        """Switch ``fault`` on; its window starts now."""
        self.faults.append((self.monotonic(), fault))

    def clear(self) -> None:
        self.faults.clear()

    def _on(self, kind: FaultKind) -> list[Fault]:
        now = self.monotonic()
        return [f for added, f in self.faults if f.kind is kind and f.active(now - added)]

    def _fires(self, fault: Fault) -> bool:
        return fault.p >= 1.0 or self.rng.random() < fault.p

    @property
    def stuck(self) -> bool:
        return bool(self._on(FaultKind.STUCK))

    def decide(self) -> Decision:
        """The fate of one request to this device."""
        self.counts["requests"] += 1
        if not self.faults:
            return ANSWER
        if self._on(FaultKind.POWER_LOSS) or any(self._fires(f) for f in self._on(FaultKind.DROPOUT)):
            self.counts["silent"] += 1
            return Decision(silent=True)
        delay = sum(f.delay for f in self._on(FaultKind.SLOW) if self._fires(f))
        exception = next((f.code for f in self._on(FaultKind.EXCEPTION) if self._fires(f)), None)
        corrupt = any(self._fires(f) for f in self._on(FaultKind.CRC))
        size = sum(f.size for f in self._on(FaultKind.GARBAGE) if self._fires(f))
        garbage = self.rng.randbytes(size) if size else b""
        for name, happened in (
            ("slow", delay),
            ("exception", exception is not None),
            ("crc", corrupt),
            ("garbage", size),
        ):
            if happened:
                self.counts[name] += 1
        return Decision(delay=delay, exception=exception, corrupt=corrupt, garbage=garbage)


def rtu_only(faults: Sequence[Fault]) -> list[Fault]:
    """The faults that need RTU framing."""
    return [f for f in faults if f.kind.needs_rtu]
