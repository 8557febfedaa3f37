"""Remote configuration: the cloud publishes a retained, versioned ``ConfigUpdate`` for the
gateway; the agent overlays it on its local file, validates it, applies it without a restart
(only the changed devices restart), keeps the last good one on disk, rolls back on failure and
acknowledges ``config:<version>``."""

from misto.edge.remote_config.diff import DeviceChanges, plan_changes
from misto.edge.remote_config.last_good import LastGood, StoredConfig
from misto.edge.remote_config.overlay import REMOTE_KEYS, RemoteConfigRejected, overlay

__all__ = [
    "REMOTE_KEYS",
    "DeviceChanges",
    "LastGood",
    "RemoteConfigRejected",
    "StoredConfig",
    "overlay",
    "plan_changes",
]
