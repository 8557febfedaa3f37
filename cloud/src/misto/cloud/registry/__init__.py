"""The asset registry: device models, gateways and devices, where they stand and who owns them,
with an audit log of every change.

* :mod:`.models` — create/update/public models and frozen records;
* :mod:`.repository` — the async :class:`RegistryRepository` interface;
* :mod:`.sql` — its one implementation, SQLAlchemy on SQLite or PostgreSQL + PostGIS;
* :mod:`.migrations` — the Alembic history, applied when the registry opens.

See docs/registry.md.
"""

from __future__ import annotations

from misto.cloud.registry.errors import (
    AlreadyExistsError,
    InUseError,
    InvalidFieldError,
    NotFoundError,
    RegistryError,
    RegistrySchemaError,
    RegistryUnavailableError,
    StaleVersionError,
    UnknownReferenceError,
)
from misto.cloud.registry.repository import RegistryRepository

__all__ = [
    "AlreadyExistsError",
    "InUseError",
    "InvalidFieldError",
    "NotFoundError",
    "RegistryError",
    "RegistryRepository",
    "RegistrySchemaError",
    "RegistryUnavailableError",
    "StaleVersionError",
    "UnknownReferenceError",
    "open_registry",
]


async def open_registry(url: str) -> RegistryRepository:
    """Open (and migrate) the registry database at ``url``: ``sqlite:///path`` or
    ``postgresql+psycopg://user:password@host/db`` (PostGIS installed)."""
    from misto.cloud.registry.sql import SqlRegistry

    return await SqlRegistry.open(url)
