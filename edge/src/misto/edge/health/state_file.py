"""The state file that ``misto-edge status`` reads: the running agent's health plus the last value of
every metric, rewritten atomically every ``state_interval`` (a temporary file renamed over the old
one, so a reader never sees half a file).

Why a file rather than a socket: it needs no server in the agent and no permissions beyond the
state directory, and it still tells what the agent last saw after the agent has died (the file
says when it was written and by which process, so a stale one is recognised). It is not synced to
the storage: losing it to a power cut costs nothing, and not syncing spares the flash.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec

from misto.protocol import Health, Reading

FORMAT = 1


class LastValue(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: float
    unit: str
    ts: datetime


class DeviceInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    driver: str
    interval_s: float
    values: dict[str, LastValue] = {}
    """metric -> last value read; a reading for another device id than ``id`` is keyed ``device/metric``."""


class AgentState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: Literal[1]
    pid: int
    written_at: datetime
    interval_s: float
    broker_url: str
    buffer_path: str | None
    health: Health
    devices: list[DeviceInfo]
    stopped: bool = False


class StateFileError(Exception):
    """The state file is missing or unreadable."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AgentState)


def values_of(device_id: str, readings: Iterable[Reading]) -> dict[str, LastValue]:
    return {
        (r.metric if r.device == device_id else f"{r.device}/{r.metric}"): LastValue(r.value, r.unit, r.ts)
        for r in readings
    }


def write_state(path: Path, state: AgentState) -> None:
    """Replace ``path`` atomically (same directory, then ``rename``)."""
    payload = msgspec.json.format(_encoder.encode(state), indent=2)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(payload)
        temporary.chmod(0o644)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def read_state(path: Path) -> AgentState:
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise StateFileError(f"{path} does not exist: is the agent running, with this state_file?") from None
    except OSError as exc:
        raise StateFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateFileError(f"{path} is not a state file of this agent version: {exc}") from exc
