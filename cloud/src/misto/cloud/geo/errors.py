"""The geo package's errors: an import that fails names every problem with its path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from misto.cloud.errors import CloudError


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: ``path`` like ``features[3].geometry.coordinates[0]``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class GeoError(CloudError):
    """Base of the geo package's errors; all are permanent (the input must change)."""


class CrsError(GeoError):
    """A coordinate reference system is unknown, unsupported, or cannot be transformed to WGS 84."""

    def __init__(self, crs: str, reason: str) -> None:
        self.crs = crs
        self.reason = reason
        super().__init__(f"CRS {crs!r}: {reason}")


class GeoJSONError(GeoError):
    """A GeoJSON document was refused. ``problems`` lists every problem found, each with its path."""

    def __init__(self, problems: Sequence[Problem], *, layer: str, source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.layer = layer
        self.source = source
        where = f" in {source}" if source else ""
        shown = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{len(self.problems)} problem(s) in layer {layer!r}{where}:\n{shown}{more}")


class SpatialQueryError(GeoError, ValueError):
    """A spatial query's arguments are out of range (a latitude beyond 90, a negative radius)."""
