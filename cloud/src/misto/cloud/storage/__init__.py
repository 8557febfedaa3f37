"""Reading stores: the :class:`Store` interface and its backends, chosen by ``store.backend``."""

from __future__ import annotations

from misto.cloud.settings import InfluxStoreSettings, SqliteStoreSettings
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


async def open_store(settings: SqliteStoreSettings | InfluxStoreSettings) -> Store:
    """Open the backend named by ``settings.backend`` (creating or migrating its schema)."""
    match settings:
        case InfluxStoreSettings():
            from misto.cloud.storage.influx import InfluxStore

            return await InfluxStore.open(settings)
        case SqliteStoreSettings():
            from misto.cloud.storage.sqlite import SqliteStore

            return await SqliteStore.from_settings(settings)
