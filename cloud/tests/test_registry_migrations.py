"""The registry's Alembic history on both databases: up from empty to head, down to base and up
again; the migrated schema equals the tables' metadata (autogenerate finds nothing to do); the
registry refuses a database it cannot migrate; PostGIS answers spatial queries from its index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from misto.cloud.registry.errors import RegistrySchemaError
from misto.cloud.registry.migrations import current, downgrade, head, upgrade
from misto.cloud.registry.spatial import Box, PostgisSpatial
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.tables import POSTGIS_LOCATION_INDEX, VERSION_TABLE, include_name, metadata

BACKENDS = ["sqlite", "postgis"]
POSTGIS_OWN = {"spatial_ref_sys"}


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return str(request.getfixturevalue("postgis").url)


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    made = sa.create_engine(url)
    try:
        yield made
    finally:
        made.dispose()


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - POSTGIS_OWN


def test_up_down_and_up_again(engine: sa.Engine) -> None:
    assert tables(engine) == set()
    upgrade(engine)
    assert tables(engine) == {*metadata.tables, VERSION_TABLE}
    with engine.connect() as conn:
        assert current(conn) == head()
    downgrade(engine)
    assert tables(engine) == {VERSION_TABLE}
    with engine.connect() as conn:
        assert current(conn) is None
    upgrade(engine)
    assert tables(engine) == {*metadata.tables, VERSION_TABLE}
    upgrade(engine)  # at head already: nothing to do
    with engine.connect() as conn:
        assert current(conn) == head()


def test_metadata_matches_the_migrated_schema(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, metadata) == []


def test_the_comparison_sees_a_difference(engine: sa.Engine) -> None:
    """The check above is not vacuous: a column the migrations lack is reported."""
    upgrade(engine)
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    sa.Table("gateways", changed, sa.Column("firmware", sa.String(20)), extend_existing=True)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name, "version_table": VERSION_TABLE})
        diff = compare_metadata(context, changed)
    assert [(d[0], d[2], d[3].name) for d in diff] == [("add_column", "gateways", "firmware")]


async def test_open_migrates_an_empty_database(url: str, engine: sa.Engine) -> None:
    async with await SqlRegistry.open(url) as registry:
        await registry.ping()
    with engine.connect() as conn:
        assert current(conn) == head()


async def test_open_refuses_an_unknown_revision(url: str, engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00d'"))
    with pytest.raises(RegistrySchemaError, match="f00d"):
        await SqlRegistry.open(url)
    with pytest.raises(RegistrySchemaError, match="database is at revision 'f00d'"):
        await SqlRegistry.open(url, migrate=False)


def test_postgis_queries_use_the_gist_index(request: pytest.FixtureRequest) -> None:
    """The spatial queries use the index's very expression, so PostgreSQL answers from the index."""
    engine = sa.create_engine(request.getfixturevalue("postgis").url)
    try:
        upgrade(engine)
        queries = [
            PostgisSpatial.box_query([], Box(32.6, 46.6, 32.7, 46.7)),
            PostgisSpatial.within_query([], 32.61, 46.64, 1000.0),
        ]
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))  # an empty table: make the choice visible
            for query in queries:
                sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
                plan = "\n".join(row[0] for row in conn.execute(sa.text(f"EXPLAIN {sql}")))
                assert POSTGIS_LOCATION_INDEX in plan, plan
    finally:
        engine.dispose()
