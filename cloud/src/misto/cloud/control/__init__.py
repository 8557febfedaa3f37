"""Remote configuration and commands: the :class:`ControlRepository` interface and its records,
the checks made before anything is sent, and :class:`RemoteControl`, which records and publishes.

The SQLite repository lives with the other SQLite code (:mod:`misto.cloud.storage.sqlite_control`,
the only place besides the reading store that imports ``sqlite3``).
"""

from __future__ import annotations

from misto.cloud.control.base import (
    AckRecord,
    AckSink,
    CommandRecord,
    CommandState,
    ConfigRecord,
    ConfigStatus,
    ControlRepository,
    config_ref,
    parse_config_ref,
)
from misto.cloud.control.service import Publisher, RemoteControl
from misto.cloud.settings import CloudSettings

__all__ = [
    "AckRecord",
    "AckSink",
    "CommandRecord",
    "CommandState",
    "ConfigRecord",
    "ConfigStatus",
    "ControlRepository",
    "Publisher",
    "RemoteControl",
    "config_ref",
    "open_control",
    "parse_config_ref",
]


async def open_control(settings: CloudSettings) -> ControlRepository:
    """Open the control database named by ``control.path`` (default: next to ``store.path``)."""
    from misto.cloud.storage.sqlite_control import SqliteControlRepository

    return await SqliteControlRepository.open(settings.control.database(settings.store))
