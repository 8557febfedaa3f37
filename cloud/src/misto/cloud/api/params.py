"""Parsing and checking query parameters. Errors are FastAPI's 422 format, naming the parameter:
``{"detail": [{"type": "value_error", "loc": ["query", "every"], "msg": "...", "input": "..."}]}``."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import NoReturn

from fastapi.exceptions import RequestValidationError

from misto.protocol.vocabulary import METRICS

_EVERY = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MIN_EVERY = timedelta(seconds=1)
MAX_EVERY = timedelta(days=366)
#: Window lengths chosen when ``every`` is not given: the first that keeps the count small.
AUTO_EVERY = tuple(
    timedelta(seconds=s)
    for s in (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
)
AUTO_WINDOWS = 500


def query_error(parameter: str, message: str, value: object) -> NoReturn:
    raise RequestValidationError([{"type": "value_error", "loc": ("query", parameter), "msg": message, "input": value}])


def parse_every(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``1d`` or a number of seconds; 422 naming ``every`` otherwise."""
    match = _EVERY.match(text)
    if match is None:
        query_error("every", "must be a duration like 30s, 5m, 1h, 1d or a number of seconds", text)
    every = timedelta(seconds=float(match["number"]) * _UNITS[match["unit"]])
    if not MIN_EVERY <= every <= MAX_EVERY:
        query_error("every", f"must be between {MIN_EVERY} and {MAX_EVERY.days} days", text)
    return every


def window_count(span: timedelta, every: timedelta) -> int:
    """Most windows ``span`` can touch when windows align to the epoch."""
    return math.ceil(span / every) + 1


def auto_every(span: timedelta) -> timedelta:
    for every in AUTO_EVERY:
        if window_count(span, every) <= AUTO_WINDOWS:
            return every
    return AUTO_EVERY[-1]


def check_metric(metric: str | None) -> None:
    if metric is not None and metric not in METRICS:
        query_error("metric", f"unknown metric {metric!r}; known metrics: {', '.join(sorted(METRICS))}", metric)
