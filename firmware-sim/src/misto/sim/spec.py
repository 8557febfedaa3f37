"""Device specs: which model to serve where, written ``MODEL@HOST:PORT[/UNIT]``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from misto.sim.devices import MODELS, DeviceModel
from misto.sim.errors import SpecError

DEFAULT_UNIT = 1
MAX_UNIT = 247  # the highest unicast Modbus address

_SPEC = re.compile(
    r"^(?P<model>[^@\s]+)@(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+))"
    r":(?P<port>\d{1,5})(?:/(?P<unit>\d{1,3}))?$"
)
FORMAT = "MODEL@HOST:PORT[/UNIT], e.g. aq1@127.0.0.1:5020/1"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """Serve ``model`` on ``host``:``port`` (0 lets the OS pick a free port) as Modbus unit
    ``unit``. Several specs with the same host and port and different units share one
    server, as devices behind a Modbus TCP gateway do."""

    model: str
    host: str
    port: int
    unit: int = DEFAULT_UNIT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.model}@{host}:{self.port}/{self.unit}"


def parse_device_spec(text: str, models: Mapping[str, DeviceModel] = MODELS) -> DeviceSpec:
    """Parse ``MODEL@HOST:PORT[/UNIT]``; :class:`SpecError` says what is wrong with it."""
    m = _SPEC.match(text.strip())
    if m is None:
        raise SpecError(text, f"expected {FORMAT}")
    model = m["model"]
    if model not in models:
        raise SpecError(text, f"unknown model {model!r}; known models: {', '.join(sorted(models))}")
    port = int(m["port"])
    if port > 0xFFFF:
        raise SpecError(text, f"port {port} is not in 0..65535")
    unit = DEFAULT_UNIT if m["unit"] is None else int(m["unit"])
    if not 1 <= unit <= MAX_UNIT:
        raise SpecError(text, f"unit {unit} is not in 1..{MAX_UNIT}")
    return DeviceSpec(model=model, host=m["ipv6"] or m["host"], port=port, unit=unit)


def parse_device_specs(texts: Iterable[str], models: Mapping[str, DeviceModel] = MODELS) -> list[DeviceSpec]:
    """Parse every spec and check them together; one :class:`SpecError` per bad spec, raised
    as an :class:`ExceptionGroup` so that all of them are reported at once."""
    specs: list[DeviceSpec] = []
    errors: list[SpecError] = []
    for text in texts:
        try:
            specs.append(parse_device_spec(text, models))
        except SpecError as exc:
            errors.append(exc)
    errors.extend(conflicts(specs))
    if errors:
        raise ExceptionGroup("bad device specs", errors)
    return specs


def conflicts(specs: Sequence[DeviceSpec]) -> list[SpecError]:
    """Specs that would serve two devices as the same unit on the same port."""
    seen: dict[tuple[str, int, int], DeviceSpec] = {}
    errors: list[SpecError] = []
    for spec in specs:
        if spec.port == 0:
            continue
        where = (spec.host, spec.port, spec.unit)
        if where in seen:
            errors.append(SpecError(str(spec), f"unit {spec.unit} on {spec.host}:{spec.port} is already {seen[where]}"))
        else:
            seen[where] = spec
    return errors
