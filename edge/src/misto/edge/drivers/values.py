"""The gate between decoded values and protocol readings.

A value that cannot be sent (NaN, infinity) or breaks the vocabulary (unknown metric, wrong unit,
outside the metric's physical range) is refused, counted, and logged when a metric turns bad and
when it turns good again: a stuck sensor gives two log lines, not one per poll.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from misto.protocol import Reading, vocabulary

log = logging.getLogger("misto.edge.drivers")


class ValueGate:
    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.rejected_total = 0
        self._bad: set[str] = set()

    def reading(self, metric: str, unit: str, value: float, ts: datetime) -> Reading | None:
        """A reading for ``value``, or ``None`` (counted and logged) if it must not be sent."""
        reason = (
            f"{value!r} is not a finite number"
            if not math.isfinite(value)
            else vocabulary.check_reading(metric, unit, value)
        )
        if reason is not None:
            self.rejected_total += 1
            if metric not in self._bad:
                self._bad.add(metric)
                log.warning("device %s: refusing %s: %s (once until valid again)", self.device_id, metric, reason)
            return None
        if metric in self._bad:
            self._bad.discard(metric)
            log.info("device %s: %s is valid again (%r)", self.device_id, metric, value)
        return Reading(device=self.device_id, metric=metric, value=value, unit=unit, ts=ts)
