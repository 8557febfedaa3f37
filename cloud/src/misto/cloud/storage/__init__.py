"""Reading stores: the :class:`Store` interface and its backends, chosen by ``store.backend``."""

from __future__ import annotations

from datetime import timedelta

from misto.cloud.settings import SqliteStoreSettings
from misto.cloud.storage.base import (
    DeadLetter,
    DeadLetterKind,
    DeviceInfo,
    GatewayHealth,
    GatewayStatus,
    LatestReading,
    Series,
    SeriesWindow,
    Store,
    StoreCounts,
    StoredDeadLetter,
)

__all__ = [
    "DeadLetter",
    "DeadLetterKind",
    "DeviceInfo",
    "GatewayHealth",
    "GatewayStatus",
    "LatestReading",
    "Series",
    "SeriesWindow",
    "Store",
    "StoreCounts",
    "StoredDeadLetter",
    "open_store",
]


async def open_store(settings: SqliteStoreSettings) -> Store:
    """Open the backend named by ``settings.backend`` (creating or migrating its schema)."""
    match settings.backend:
        case "sqlite":
            from misto.cloud.storage.sqlite import SqliteStore

            return await SqliteStore.open(settings.path, dedup_retention=timedelta(days=settings.dedup_retention_days))
