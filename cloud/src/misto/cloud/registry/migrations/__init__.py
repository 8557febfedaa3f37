"""Alembic migrations of the registry: one history for SQLite and PostgreSQL + PostGIS.

The registry migrates its database to ``head`` when it opens (:func:`upgrade`); developers make a
new revision with ``alembic -c cloud/src/misto/cloud/registry/migrations/alembic.ini revision
--autogenerate -m "..."`` against a database URL given as ``-x url=...``. Revisions are plain
Alembic scripts; dialect-only steps (the PostGIS index) test ``op.get_bind().dialect.name``.
SQLite runs in batch mode (``render_as_batch``), so later ``ALTER`` steps work there too.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from misto.cloud.registry.tables import VERSION_TABLE

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("version_table", VERSION_TABLE)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """``alembic upgrade <revision>`` in one transaction (PostgreSQL and SQLite have transactional DDL)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: sa.Engine, revision: str = "base") -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
