"""At start-up: the local file, with the last good remote config on top when there is one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from misto.edge.config_errors import read_yaml_file
from misto.edge.errors import ConfigError
from misto.edge.remote_config.last_good import LastGood
from misto.edge.remote_config.overlay import RemoteConfigRejected, overlay
from misto.edge.settings import Settings, settings_from_data

log = logging.getLogger(__name__)
LAST_GOOD_FILE = "remote-config.json"


@dataclass(frozen=True)
class RemoteSetup:
    """What the agent needs to take remote configs: the local file's data, where relative paths
    start, and the remote version in force (None: the local file alone)."""

    local: Mapping[str, Any]
    base_dir: Path
    last_good: LastGood
    version: int | None
    notes: tuple[tuple[int, str], ...] = ()
    """(level, message) to log once logging is configured."""

    def log_notes(self) -> None:
        for level, message in self.notes:
            log.log(level, "%s", message)


def load_for_run(path: Path, *, env: Mapping[str, str] | None = None) -> tuple[Settings, RemoteSetup]:
    """Validate the local file (errors are fatal: ConfigError), then apply the last good remote
    config if one is stored and still valid (if not, say so and run on the local file)."""
    document = read_yaml_file(path)
    base_dir = path.resolve().parent
    local = settings_from_data(document.data, source=str(path), locate=document.locate, base_dir=base_dir, env=env)
    last_good = LastGood(local.state_dir / LAST_GOOD_FILE)
    stored = last_good.load()
    if stored is None:
        return local, RemoteSetup(document.data, base_dir, last_good, None)
    try:
        merged = overlay(document.data, stored.config)
        settings = settings_from_data(merged, source=str(last_good.path), base_dir=base_dir, env=env)
    except (RemoteConfigRejected, ConfigError) as exc:
        note = f"last good remote config version {stored.version} no longer fits {path} ({exc}); using the local file"
        return local, RemoteSetup(document.data, base_dir, last_good, None, ((logging.ERROR, note),))
    note = f"using remote config version {stored.version} (applied {stored.applied_at:%Y-%m-%d %H:%M:%S}Z) over {path}"
    return settings, RemoteSetup(document.data, base_dir, last_good, stored.version, ((logging.INFO, note),))
