"""Helpers shared by the ``serial`` and ``camera`` commands of ``misto-sim``: the simulated clock
(``--start``, ``--speed``), logging, ``HOST:PORT`` options and usage errors."""

from __future__ import annotations

import logging
import secrets
import sys
from datetime import datetime

import typer

from misto.sim.clock import Clock, ScaledClock, system_clock
from misto.sim.signals import KYIV

USAGE_ERROR = 2


def fail(message: str, code: int = USAGE_ERROR) -> typer.Exit:
    typer.echo(f"misto-sim: error: {message}", err=True)
    return typer.Exit(code)


def make_clock(start: str | None, speed: float) -> Clock:
    """The wall clock, or a scaled clock from ``start`` (ISO 8601; no offset: Kyiv local time)."""
    if start is None and speed == 1.0:
        return system_clock
    at = system_clock()
    if start is not None:
        try:
            at = datetime.fromisoformat(start)
        except ValueError:
            raise fail(f"--start {start!r}: not an ISO 8601 time such as 2025-06-03T08:00:00+03:00") from None
        at = at.replace(tzinfo=KYIV) if at.tzinfo is None else at
    return ScaledClock(at, speed=speed)


def setup_logging(level_name: str) -> None:
    level = logging.getLevelNamesMapping().get(level_name.upper())
    if level is None:
        raise fail(f"--log-level {level_name!r}: expected one of debug, info, warning, error")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def pick_seed(seed: int | None) -> int:
    if seed is None:
        seed = secrets.randbelow(2**31)
        typer.echo(f"misto-sim: seed {seed} (pass --seed {seed} to repeat this run)", err=True)
    return seed


def host_port(option: str, text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 in brackets); port 0 lets the OS pick."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 0xFFFF:
        raise fail(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8081")
    return host, int(port)
