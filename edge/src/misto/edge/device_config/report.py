"""Report by exception (``report:`` on any device): send a reading only when it changed beyond a
deadband or when its metric has been silent for ``max_silence``, to save mobile data.

    report:
      deadband: 0.5                       # device default: absolute (same as {absolute: 0.5})
      max_silence: 15m
      metrics:
        pm25: {deadband: {absolute: 1, percent: 5}}
        temperature: {deadband: 0.1, max_silence: 1h}

A reading is sent when ``|value - last sent value| > band`` or ``max_silence`` has passed since the
last one sent, where ``band = max(absolute, percent / 100 * |last sent value|)`` (a percentage alone
shrinks to nothing near zero; an absolute floor keeps noise out). Without a deadband any change is
sent. The first reading, and the first after the device was unavailable, is always sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator, model_validator

from misto.edge.config_model import ConfigModel
from misto.edge.durations import Duration
from misto.protocol.vocabulary import METRICS

DEFAULT_MAX_SILENCE = 900.0


class Deadband(ConfigModel):
    """How far a value must move from the last one sent to be sent again."""

    absolute: float | None = Field(default=None, ge=0, description="In the metric's unit")
    percent: float | None = Field(default=None, ge=0, description="Of the last value sent")

    @model_validator(mode="before")
    @classmethod
    def _number_is_absolute(cls, data: Any) -> Any:
        return {"absolute": data} if isinstance(data, int | float) and not isinstance(data, bool) else data

    @model_validator(mode="after")
    def _something(self) -> Deadband:
        if self.absolute is None and self.percent is None:
            raise ValueError("set absolute, percent or both (or a number, which is absolute)")
        return self


class MetricReport(ConfigModel):
    """Overrides of the device's report settings for one metric."""

    deadband: Deadband | None = None
    max_silence: Duration | None = None


@dataclass(frozen=True, slots=True)
class ReportRule:
    absolute: float
    percent: float
    max_silence: float

    def band(self, last: float) -> float:
        return max(self.absolute, self.percent / 100.0 * abs(last))


class ReportSettings(ConfigModel):
    """Report by exception for one device."""

    deadband: Deadband | None = Field(default=None, description="Default for every metric; none: any change")
    max_silence: Duration = Field(default=DEFAULT_MAX_SILENCE, description="Send at least this often")
    metrics: dict[str, MetricReport] = Field(default_factory=dict, description="Per-metric overrides")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: dict[str, MetricReport]) -> dict[str, MetricReport]:
        unknown = sorted(name for name in metrics if name not in METRICS)
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; see the metric vocabulary")
        return metrics

    def rule(self, metric: str) -> ReportRule:
        override = self.metrics.get(metric)
        deadband = (override.deadband if override else None) or self.deadband
        silence = (override.max_silence if override else None) or self.max_silence
        if deadband is None:
            return ReportRule(0.0, 0.0, silence)
        return ReportRule(deadband.absolute or 0.0, deadband.percent or 0.0, silence)
