"""Per-device request statistics: what the gateway's health telemetry reports and what a
technician reads to tell a dead device from a noisy cable (CRC errors) or a wrong register map
(exception 2)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ModbusCounters:
    """Counts of one device's requests. ``requests`` counts attempts (a retry is a new attempt);
    every attempt ends as exactly one of ``responses``, ``exceptions`` (by code), ``timeouts``,
    ``crc_errors`` or ``connection_errors``."""

    requests: int = 0
    responses: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    connection_errors: int = 0
    retries: int = 0
    exceptions: Counter[int] = field(default_factory=Counter)
    last_latency_s: float | None = None

    @property
    def exception_responses(self) -> int:
        return sum(self.exceptions.values())

    def as_dict(self) -> dict[str, int | float | dict[str, int] | None]:
        """Plain data for health telemetry and ``--json`` output."""
        return {
            "requests": self.requests,
            "responses": self.responses,
            "timeouts": self.timeouts,
            "crc_errors": self.crc_errors,
            "connection_errors": self.connection_errors,
            "retries": self.retries,
            "exception_responses": self.exception_responses,
            "exceptions": {str(code): n for code, n in sorted(self.exceptions.items())},
            "last_latency_s": self.last_latency_s,
        }

    def health_counters(self) -> dict[str, int]:
        """The whole-number counters, flat, for gateway health (``exception_<code>`` per code)."""
        flat = {
            "requests": self.requests,
            "responses": self.responses,
            "timeouts": self.timeouts,
            "crc_errors": self.crc_errors,
            "connection_errors": self.connection_errors,
            "retries": self.retries,
            "exception_responses": self.exception_responses,
        }
        flat.update({f"exception_{code}": n for code, n in sorted(self.exceptions.items())})
        return flat
