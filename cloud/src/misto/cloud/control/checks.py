"""What the cloud checks before it sends a configuration or a command to a gateway.

The gateway agent is the authority (it validates everything and answers with an Ack naming the
problem); these checks catch, before anything is published, the mistakes an operator should hear
about at once:

- configuration keys that only the gateway's local file may set (``broker``, ``gateway_id``,
  ``buffer``): a retained message must never carry broker credentials, and a remote config must
  never be able to cut the gateway off or drop its buffer;
- unknown command actions and missing arguments;
- numbers JSON cannot carry (NaN, infinity) and payloads over the protocol's size limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from misto.cloud.errors import InputProblem
from misto.protocol import MAX_PAYLOAD_BYTES

#: Settings of the gateway that can only be changed in its local file (see edge/README.md).
LOCAL_ONLY_KEYS: Final = ("broker", "gateway_id", "buffer")
#: Configuration versions stay exact in every JSON reader (2**53 - 1).
MAX_VERSION: Final = 2**53 - 1


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """The arguments an action needs: every one of ``required`` and at least one of ``one_of``.
    Arguments named in ``strings`` must be strings when given; others pass through to the agent."""

    summary: str
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()
    strings: tuple[str, ...] = ("device",)


ACTIONS: Final[Mapping[str, ActionSpec]] = {
    "write": ActionSpec(
        "write a value to a device, by metric or by table/address/type",
        required=("device", "value"),
        one_of=("metric", "address"),
        strings=("device", "metric", "table", "type"),
    ),
    "poll_now": ActionSpec("poll every device now, or only args.device"),
    "restart_driver": ActionSpec("restart one device's driver", required=("device",)),
}


def check_config(config: Mapping[str, Any]) -> list[InputProblem]:
    problems = [
        InputProblem(("config", key), f"{key!r} can only be set in the gateway's local file, not remotely")
        for key in LOCAL_ONLY_KEYS
        if key in config
    ]
    problems += non_finite(config, ("config",))
    return problems


def check_command(action: str, args: Mapping[str, Any]) -> list[InputProblem]:
    spec = ACTIONS.get(action)
    if spec is None:
        known = ", ".join(sorted(ACTIONS))
        return [InputProblem(("action",), f"unknown action {action!r}; known actions: {known}", action)]
    problems = [
        InputProblem(("args", name), f"required by action {action!r}") for name in spec.required if name not in args
    ]
    if spec.one_of and not any(name in args for name in spec.one_of):
        names = " or ".join(spec.one_of)
        problems.append(InputProblem(("args",), f"action {action!r} needs {names}"))
    problems += [
        InputProblem(("args", name), "must be a string", args[name])
        for name in spec.strings
        if name in args and not isinstance(args[name], str)
    ]
    problems += non_finite(args, ("args",))
    return problems


def check_size(payload: bytes, field: tuple[str | int, ...]) -> list[InputProblem]:
    if len(payload) <= MAX_PAYLOAD_BYTES:
        return []
    message = f"the encoded message is {len(payload)} bytes, over the protocol's limit of {MAX_PAYLOAD_BYTES}"
    return [InputProblem(field, message)]


def non_finite(value: object, path: tuple[str | int, ...]) -> list[InputProblem]:
    """Every NaN or infinite number inside ``value`` (JSON has no way to carry them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [InputProblem(path, "must be a finite number", str(value))]
    if isinstance(value, Mapping):
        return [problem for key, item in value.items() for problem in non_finite(item, (*path, str(key)))]
    if isinstance(value, list | tuple):
        return [problem for index, item in enumerate(value) for problem in non_finite(item, (*path, index))]
    return []
