"""Device specs: which model to serve where, written ``MODEL@[TRANSPORT:]ADDRESS[/UNIT]``.

=============  =================  ===============================================================
transport      address            served as
=============  =================  ===============================================================
(none), tcp    ``HOST:PORT``      Modbus TCP
``rtu-tcp``    ``HOST:PORT``      RTU frames over TCP, as behind a transparent serial converter
``pty``        ``/ABSOLUTE/PATH``  Modbus RTU on a new pseudo-terminal linked at the path
``serial``     ``/ABSOLUTE/PATH``  Modbus RTU on an existing serial device (or a socat pty)
=============  =================  ===============================================================

A trailing ``/UNIT`` (1-247, default 1) is the unit id, also after a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from misto.sim.devices import MODELS, DeviceModel
from misto.sim.errors import SpecError

DEFAULT_UNIT = 1
MAX_UNIT = 247  # the highest unicast Modbus address


class SpecTransport(StrEnum):
    TCP = "tcp"
    RTU_TCP = "rtu-tcp"
    PTY = "pty"
    SERIAL = "serial"

    @property
    def is_serial(self) -> bool:
        return self in (SpecTransport.PTY, SpecTransport.SERIAL)

    @property
    def is_rtu(self) -> bool:
        return self is not SpecTransport.TCP


_NET = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+)):(?P<port>\d{1,5})$")
_SPEC = re.compile(
    r"^(?P<model>[^@\s]+)@(?:(?P<transport>tcp|rtu-tcp|pty|serial):)?(?P<address>.+?)(?:/(?P<unit>\d{1,3}))?$"
)
FORMAT = "MODEL@[TRANSPORT:]ADDRESS[/UNIT], e.g. aq1@127.0.0.1:5020/1 or tc1@pty:/tmp/misto-bus/3"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """Serve ``model`` as Modbus unit ``unit``: over TCP on ``host``:``port`` (0 lets the OS pick a
    free port), or on the serial line at ``path``. Several specs with the same address and
    different units share one server, as devices on one bus or behind one gateway do."""

    model: str
    host: str
    port: int
    unit: int = DEFAULT_UNIT
    transport: SpecTransport = SpecTransport.TCP
    path: str | None = None

    @property
    def address(self) -> str:
        if self.path is not None:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """Where it is served, as written in a spec: ``127.0.0.1:5020``, ``pty:/tmp/bus``."""
        return self.address if self.transport is SpecTransport.TCP else f"{self.transport}:{self.address}"

    def __str__(self) -> str:
        return f"{self.model}@{self.endpoint}/{self.unit}"


def _problem_with_address(transport: SpecTransport, address: str) -> str | None:
    if transport.is_serial:
        return None if address.startswith("/") else f"a {transport} address is an absolute path, not {address!r}"
    m = _NET.match(address)
    if m is None:
        return f"expected HOST:PORT for {transport}, not {address!r}"
    if int(m["port"]) > 0xFFFF:
        return f"port {int(m['port'])} is not in 0..65535"
    return None


def parse_device_spec(text: str, models: Mapping[str, DeviceModel] = MODELS) -> DeviceSpec:
    """Parse ``MODEL@[TRANSPORT:]ADDRESS[/UNIT]``; :class:`SpecError` says what is wrong with it."""
    m = _SPEC.match(text.strip())
    if m is None:
        raise SpecError(text, f"expected {FORMAT}")
    model = m["model"]
    if model not in models:
        raise SpecError(text, f"unknown model {model!r}; known models: {', '.join(sorted(models))}")
    transport = SpecTransport(m["transport"] or "tcp")
    address = m["address"]
    if problem := _problem_with_address(transport, address):
        raise SpecError(text, problem)
    unit = DEFAULT_UNIT if m["unit"] is None else int(m["unit"])
    if not 1 <= unit <= MAX_UNIT:
        raise SpecError(text, f"unit {unit} is not in 1..{MAX_UNIT}")
    if transport.is_serial:
        return DeviceSpec(model=model, host="", port=0, unit=unit, transport=transport, path=str(Path(address)))
    net = _NET.match(address)
    assert net is not None
    return DeviceSpec(
        model=model, host=net["ipv6"] or net["host"], port=int(net["port"]), unit=unit, transport=transport
    )


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


def endpoint_key(spec: DeviceSpec) -> tuple[str, ...]:
    """Specs with the same key share one server (a serial line, or a TCP port)."""
    if spec.path is not None:
        return ("line", spec.path)
    return ("net", spec.host, str(spec.port))


def conflicts(specs: Sequence[DeviceSpec]) -> list[SpecError]:
    """Specs that would serve two devices as the same unit at the same place, or one place over
    two transports."""
    seen: dict[tuple[str, ...], DeviceSpec] = {}
    transports: dict[tuple[str, ...], DeviceSpec] = {}
    errors: list[SpecError] = []
    for spec in specs:
        if spec.port == 0 and spec.path is None:
            continue
        key = endpoint_key(spec)
        first = transports.setdefault(key, spec)
        if first.transport is not spec.transport:
            errors.append(SpecError(str(spec), f"{spec.address} is already served over {first.transport} by {first}"))
            continue
        where = (*key, str(spec.unit))
        if where in seen:
            errors.append(SpecError(str(spec), f"unit {spec.unit} on {spec.address} is already {seen[where]}"))
        else:
            seen[where] = spec
    return errors
