"""Report by exception at run time: which readings of a poll are sent (see
:mod:`misto.edge.device_config.report` for the rules). Every reading that is sent keeps the time it
was read; the ones held back are only counted."""

from __future__ import annotations

from dataclasses import dataclass

from misto.edge.device_config.report import ReportRule, ReportSettings
from misto.protocol import Reading


@dataclass(slots=True)
class _Sent:
    value: float
    at: float


class ReportFilter:
    """One per device. ``now`` is the coordinator's monotonic clock (immune to wall-clock steps)."""

    def __init__(self, settings: ReportSettings) -> None:
        self.settings = settings
        self.suppressed = 0
        self._rules: dict[str, ReportRule] = {}
        self._sent: dict[tuple[str, str], _Sent] = {}

    def _rule(self, metric: str) -> ReportRule:
        rule = self._rules.get(metric)
        if rule is None:
            rule = self._rules[metric] = self.settings.rule(metric)
        return rule

    def select(self, readings: list[Reading], now: float) -> list[Reading]:
        """The readings to send; remembers them as the last sent."""
        chosen: list[Reading] = []
        for reading in readings:
            key = (reading.device, reading.metric)
            last = self._sent.get(key)
            if last is not None:
                rule = self._rule(reading.metric)
                quiet = now - last.at < rule.max_silence
                if quiet and abs(reading.value - last.value) <= rule.band(last.value):
                    self.suppressed += 1
                    continue
            self._sent[key] = _Sent(reading.value, now)
            chosen.append(reading)
        return chosen

    def reset(self) -> None:
        """Forget what was sent: the next reading of every metric goes out (after a device failure)."""
        self._sent.clear()
