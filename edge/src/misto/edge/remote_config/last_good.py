"""The last remote config that was applied successfully, kept on disk so a restart (or a power
cut) comes back with it, even before the broker is reachable."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredConfig:
    version: int
    config: dict[str, Any]
    applied_at: datetime


class LastGood:
    """One JSON file, replaced atomically (write, fsync, rename), readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StoredConfig | None:
        """The stored config, or None if there is none. A damaged file is moved aside (and logged),
        never trusted: the agent then starts from its local file alone."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
            stored = StoredConfig(
                version=int(data["version"]),
                config=dict(data["config"]),
                applied_at=datetime.fromisoformat(data["applied_at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(self.path.name + ".damaged")
            os.replace(self.path, aside)
            log.error(
                "last good remote config %s is damaged (%s); moved to %s, using the local file", self.path, exc, aside
            )
            return None
        return stored

    def save(self, version: int, config: dict[str, Any]) -> StoredConfig:
        stored = StoredConfig(version=version, config=config, applied_at=datetime.now(UTC))
        text = json.dumps(
            {"version": version, "config": config, "applied_at": stored.applied_at.isoformat()},
            indent=2,
            sort_keys=True,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return stored
