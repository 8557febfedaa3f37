"""Fixtures of the cloud tests: a real SQLite store per test, a running ingester against the
shared ``mosquitto`` fixture and gateway-side publishers. Helpers live in ``support.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from cloud.tests.support import Gateway, RunningIngester, start_ingester, subscriber_config
from misto.cloud.storage.sqlite import SqliteStore
from misto.cloud.storage.sqlite_control import SqliteControlRepository
from tests.fixtures.mosquitto import BrokerInfo


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with await SqliteStore.open(tmp_path / "misto.db") as opened:
        yield opened


@pytest.fixture
async def control_db(tmp_path: Path) -> AsyncIterator[SqliteControlRepository]:
    async with await SqliteControlRepository.open(tmp_path / "misto-control.db") as opened:
        yield opened


@pytest.fixture
def gateway_factory() -> Iterator[Callable[..., Gateway]]:
    made: list[Gateway] = []

    def make(host: str, port: int, username: str | None, password: str | None, *, v5: bool = True) -> Gateway:
        gateway = Gateway(host, port, username, password, v5=v5)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
async def ingest(store: SqliteStore, mosquitto: BrokerInfo) -> AsyncIterator[RunningIngester]:
    running = await start_ingester(
        store, subscriber_config(mosquitto.host, mosquitto.port, "ingester", mosquitto.users["ingester"])
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def gw(mosquitto: BrokerInfo, gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory(mosquitto.host, mosquitto.port, "gw-test", mosquitto.users["gw-test"])
