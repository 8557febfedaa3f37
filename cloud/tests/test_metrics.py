"""``/metrics`` in the Prometheus text format (a registry per app, a token required) and the
periodic ``misto_ingest`` snapshot in the store."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.tests.support import T0
from misto.cloud.api import create_app
from misto.cloud.ingest import IngestStats
from misto.cloud.ingest.snapshots import SnapshotRecorder
from misto.cloud.settings import load_settings
from misto.cloud.storage import DeadLetterKind
from misto.cloud.storage.sqlite import SqliteStore

OPERATOR = "operator-token-for-metrics-0123"
SCRAPER = "metrics-token-for-prometheus-0123"


def busy_stats() -> IngestStats:
    stats = IngestStats(connected=True, messages_received=12, acked=11, readings_received=130, readings_stored=120)
    stats.dead_lettered(DeadLetterKind.TIMESTAMP, 4, gateway="gw-1")
    stats.dead_lettered(DeadLetterKind.DEVICE_OWNER, gateway="gw-2")
    stats.dead_lettered(DeadLetterKind.TOPIC)
    stats.wrote(100, 0.004)
    stats.wrote(20, 0.030)
    stats.newest_reading_at = datetime.now(UTC) - timedelta(seconds=30)
    return stats


async def scrape(stats: IngestStats | None, token: str | None, **api: Any) -> httpx.Response:
    settings = load_settings(overrides={"api": api})
    app = create_app(settings, store=None, ingest=stats)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        return await client.get("/metrics", headers=headers)


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


async def test_metrics_carry_the_ingest_counters_histograms_and_gauges() -> None:
    response = await scrape(busy_stats(), SCRAPER, metrics_token=SCRAPER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    assert found["misto_ingest_messages_received_total"] == 12
    assert found["misto_ingest_messages_acknowledged_total"] == 11
    assert found["misto_ingest_readings_written_total"] == 120
    assert found['misto_ingest_dead_letters_total{kind="timestamp"}'] == 4
    assert found['misto_ingest_rejected_total{gateway="gw-1",kind="timestamp"}'] == 4
    assert found['misto_ingest_rejected_total{gateway="gw-2",kind="device_owner"}'] == 1
    assert found['misto_ingest_rejected_total{gateway="-",kind="topic"}'] == 1
    assert found['misto_ingest_batch_readings_bucket{le="100.0"}'] == 2
    assert found['misto_ingest_batch_readings_bucket{le="10.0"}'] == 0
    assert found['misto_ingest_write_seconds_bucket{le="0.005"}'] == 1
    assert found['misto_ingest_write_seconds_bucket{le="+Inf"}'] == 2
    assert found["misto_ingest_write_seconds_sum"] == pytest.approx(0.034)
    assert found["misto_ingest_queue_depth"] == 0
    assert found["misto_ingest_lag_seconds"] == 0
    assert 29 < found["misto_ingest_reading_age_seconds"] < 60
    assert found["misto_mqtt_connected"] == 1
    assert found["misto_ingest_running"] == 1


async def test_metrics_need_the_metrics_or_the_operator_token() -> None:
    assert (await scrape(busy_stats(), None, metrics_token=SCRAPER)).status_code == 401
    assert (await scrape(busy_stats(), "wrong-token-0123456789", metrics_token=SCRAPER)).status_code == 401
    assert (await scrape(busy_stats(), OPERATOR, operator_token=OPERATOR)).status_code == 200
    refused = await scrape(busy_stats(), OPERATOR)  # no token configured at all
    assert (refused.status_code, refused.json()["detail"]) == (403, "/metrics is disabled: set api.metrics_token")


async def test_each_app_has_its_own_registry() -> None:
    first = await scrape(busy_stats(), SCRAPER, metrics_token=SCRAPER)
    second = await scrape(None, SCRAPER, metrics_token=SCRAPER)  # an API-only process: no ingester
    assert samples(first.text)["misto_ingest_running"] == 1
    assert samples(second.text) == {"misto_ingest_running": 0}


async def test_snapshots_of_the_counters_go_into_the_store(tmp_path: Path) -> None:
    stats = busy_stats()
    async with await SqliteStore.open(tmp_path / "misto.db") as store:
        recorder = SnapshotRecorder(store, stats, instance="ingester-1", interval_s=10, clock=lambda: T0)
        assert await recorder.record()
        stats.wrote(300, 0.010)
        recorder = SnapshotRecorder(
            store, stats, instance="ingester-1", interval_s=10, clock=lambda: T0 + timedelta(seconds=10)
        )
        assert await recorder.record()
    with sqlite3.connect(tmp_path / "misto.db") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(row) for row in db.execute("SELECT * FROM ingest_stats ORDER BY at")]
    assert [(r["instance"], r["readings_written"], r["rejected"], r["batch_mean_readings"]) for r in rows] == [
        ("ingester-1", 120, 6, 60.0),
        ("ingester-1", 120, 6, 300.0),  # the mean of the batches since the previous snapshot
    ]
    assert rows[0]["write_p99_ms"] == pytest.approx(30.0)
