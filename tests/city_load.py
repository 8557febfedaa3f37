"""A simulated city (``misto.sim.city``) stored through a store's public write path, for the
dashboard tests of both stores (tests/test_dashboards_influx.py, tests/test_dashboards_sqlite.py).

``hours`` of the city ending now (rounded down to the poll interval) go in tick by tick: each
gateway's status (``set_gateway_status``), the tick's telemetry in one ``write_messages`` call,
the gateways' health (``set_gateway_health``) and an ingester snapshot (``record_ingest``) of the
counts so far. The store's clock follows the city's (two seconds after each tick), so the data
arrives on time, not late. ``finish`` runs on the open store after the last tick (the InfluxDB
test fills its rollups there) and is timed as ``rollup_s``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from misto.cloud.storage.base import IngestSnapshot, MessageWrite, Store, to_ms
from misto.sim.city import City, CitySpec

Clock = Callable[[], datetime]
S = TypeVar("S", bound=Store)

INSTANCE = "ingester-1"


@dataclass
class Loaded:
    start_ms: int
    end_ms: int
    devices: int
    messages: int = 0
    readings: int = 0
    load_s: float = 0.0
    rollup_s: float = 0.0
    health_refused: int = 0  # health messages the store did not keep (none expected: each is newer)


def load_city(
    open_store: Callable[[Clock], Awaitable[S]],
    spec: CitySpec,
    hours: float,
    *,
    finish: Callable[[S, datetime, datetime], Awaitable[None]] | None = None,
) -> Loaded:
    """Generate ``hours`` of ``spec``'s city ending now and store it through the store
    ``open_store(clock)`` opens; ``finish(store, start, end)`` after the last tick."""
    return asyncio.run(_load(open_store, spec, hours, finish))


async def _load(
    open_store: Callable[[Clock], Awaitable[S]],
    spec: CitySpec,
    hours: float,
    finish: Callable[[S, datetime, datetime], Awaitable[None]] | None,
) -> Loaded:
    step = int(spec.poll_interval_s)
    end = datetime.fromtimestamp(int(time.time()) // step * step, UTC)
    start = end - timedelta(hours=hours)
    city = City(spec, start=start)
    loaded = Loaded(to_ms(start), to_ms(end), devices=len(city.devices))
    write_ms: list[float] = []
    now = [start]  # the store's clock follows the city's: its data arrives on time, not late

    def clock() -> datetime:
        return now[0]

    began = time.perf_counter()
    store = await open_store(clock)
    try:
        for tick in city.ticks(end):
            now[0] = tick.at + timedelta(seconds=2)
            for status in tick.status:
                await store.set_gateway_status(
                    status.gateway,
                    status.state,
                    boot=status.boot,
                    at=status.at,
                    agent_version=status.agent_version,
                    received_at=status.at,
                )
            batch = [MessageWrite(m.message_id, m.gateway, m.readings) for m in tick.telemetry]
            started = time.perf_counter()
            written = await store.write_messages(batch)
            write_ms.append((time.perf_counter() - started) * 1000)
            assert all(written), "the city never repeats a message id"
            loaded.messages += len(batch)
            loaded.readings += sum(len(m.readings) for m in tick.telemetry)
            for health in tick.health:
                if not await store.set_gateway_health(health, received_at=health.at):
                    loaded.health_refused += 1
            await store.record_ingest(
                IngestSnapshot(
                    instance=INSTANCE,
                    at=tick.at + timedelta(seconds=2),
                    messages_in=loaded.messages,
                    readings_in=loaded.readings,
                    readings_written=loaded.readings,
                    rejected=0,
                    duplicates=0,
                    store_errors=0,
                    queue_depth=len(batch),
                    batch_mean_readings=loaded.readings / loaded.messages if loaded.messages else 0.0,
                    write_p99_ms=p99(write_ms[-100:]),
                    lag_s=0.2,
                )
            )
        loaded.load_s = time.perf_counter() - began
        if finish is not None:
            began = time.perf_counter()
            await finish(store, start, end)
            loaded.rollup_s = time.perf_counter() - began
    finally:
        await store.close()
    return loaded


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
