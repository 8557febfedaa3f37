"""Commands from the cloud (``misto/v1/<gw>/cmd``), each answered by an ``Ack`` with its id.

| action           | args                                                            |
|------------------|-----------------------------------------------------------------|
| `write`          | `device`, `value`, and `metric` (a row of the device's map) or  |
|                  | `table`, `address`, `type` (+ `word_order`, `byte_order`,       |
|                  | `scale`, `offset`, `bit`) for a register outside the map        |
| `poll_now`       | `device` (optional: every device when absent)                   |
| `restart_driver` | `device`                                                        |

A command never stops polling: it runs beside the poll coordinator, and a failure (bad
arguments, an unknown device, a device that refuses the write) becomes an Ack with
``result: error`` and a reason, never an exception in the agent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Protocol

from misto.edge.clock import Clock
from misto.edge.errors import EdgeError
from misto.edge.registers.spec import DataType, Order, RegisterSpec, Table
from misto.protocol import Ack, AckResult, Command

log = logging.getLogger(__name__)


class CommandTarget(Protocol):
    """What commands act on (the agent)."""

    async def poll_now(self, device: str | None) -> int:
        """Poll ``device`` (or every device) at once; how many devices were polled."""
        ...

    async def restart_driver(self, device: str) -> None: ...

    async def write(self, device: str, target: str | RegisterSpec, value: float) -> str:
        """Write through the device's driver; a short description of what was written."""
        ...


class CommandRejected(ValueError):
    """The command's arguments are wrong; the message goes into the Ack."""


async def execute(command: Command, target: CommandTarget, *, gateway: str, clock: Clock) -> Ack:
    """Run ``command`` and return its Ack (never raises for a command's own failure)."""
    try:
        detail = await _run(command, target)
        result = AckResult.OK
    except (CommandRejected, EdgeError, KeyError) as exc:
        detail, result = str(exc).strip("'\""), AckResult.ERROR
        log.warning("command %s (%s) failed: %s", command.id, command.action, detail)
    else:
        log.info("command %s (%s): %s", command.id, command.action, detail)
    return Ack(schema=1, gateway=gateway, ref=command.id, result=result, at=clock.now(), detail=detail[:1000])


async def _run(command: Command, target: CommandTarget) -> str:
    args = command.args
    match command.action:
        case "poll_now":
            device = _optional_str(args, "device")
            polled = await target.poll_now(device)
            return f"polled {polled} device(s)"
        case "restart_driver":
            device = _str(args, "device")
            await target.restart_driver(device)
            return f"restarted the driver of {device}"
        case "write":
            device = _str(args, "device")
            value = _number(args, "value")
            where: str | RegisterSpec = _str(args, "metric") if "metric" in args else _raw_spec(args)
            return await target.write(device, where, value)
        case other:
            raise CommandRejected(f"unknown action {other!r}; known actions: poll_now, restart_driver, write")


def _str(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise CommandRejected(f"args.{name} must be a non-empty string")
    return value


def _optional_str(args: Mapping[str, Any], name: str) -> str | None:
    return None if args.get(name) is None else _str(args, name)


def _number(args: Mapping[str, Any], name: str) -> float:
    value = args.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CommandRejected(f"args.{name} must be a finite number")
    return float(value)


def _raw_spec(args: Mapping[str, Any]) -> RegisterSpec:
    """A register given by address (for set points outside the device's register map)."""
    try:
        table = Table(_str(args, "table"))
        data_type = DataType(_str(args, "type"))
        word_order = Order(args.get("word_order", "big"))
        byte_order = Order(args.get("byte_order", "big"))
    except ValueError as exc:
        raise CommandRejected(f"args: {exc}") from None
    address = args.get("address")
    if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 0xFFFF:
        raise CommandRejected("args.address must be a whole number 0..65535 (write by address), or give args.metric")
    bit = args.get("bit")
    if bit is not None and (isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit <= 15):
        raise CommandRejected("args.bit must be a whole number 0..15")
    scale = _number(args, "scale") if "scale" in args else 1.0
    if scale == 0:
        raise CommandRejected("args.scale must not be 0")
    offset = _number(args, "offset") if "offset" in args else 0.0
    return RegisterSpec(
        metric=f"{table}@{address}", table=table, address=address, type=data_type, unit="",
        word_order=word_order, byte_order=byte_order, scale=scale, offset=offset, bit=bit,
    )  # fmt: skip
