"""The InfluxDB store against a real ``influxd`` (the ``influxd`` fixture): escaping, batching and
gzip on the wire, retries across an outage, bisecting a refused batch, authentication, the
retention policies and continuous queries, and rollups read back. The Store contract itself is
the conformance suite (test_store_conformance.py)."""

from __future__ import annotations

import asyncio
import gzip
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from cloud.tests.support import eventually
from misto.cloud.errors import StoreError
from misto.cloud.settings import InfluxStoreSettings, load_settings
from misto.cloud.storage.base import DeadLetterKind, MessageWrite, Resolution
from misto.cloud.storage.influx import InfluxStore
from misto.cloud.storage.influx_http import InfluxHttp, InfluxUnusableError, SentRequest
from misto.cloud.storage.influx_schema import READING_MEASUREMENTS
from misto.cloud.storage.line_protocol import line
from misto.protocol import Reading
from tests.fixtures.influxd import InfluxInfo
from tests.fixtures.net import LOOPBACK, free_port

DB = "misto_test"
NOW = datetime.now(UTC).replace(microsecond=0)
RECENT = NOW - timedelta(hours=1)


def settings(influxd: InfluxInfo, **overrides: Any) -> InfluxStoreSettings:
    return InfluxStoreSettings(url=influxd.url, database=DB, **overrides)


@pytest.fixture
async def store(influxd: InfluxInfo) -> AsyncIterator[InfluxStore]:
    async with await InfluxStore.open(settings(influxd)) as opened:
        yield opened


def pm25(device: str, value: float, at: datetime) -> Reading:
    return Reading(device, "pm25", value, "ug/m3", at)


def rows_of(influxd: InfluxInfo, query: str) -> list[dict[str, Any]]:
    [result] = influxd.query(query, db=DB)
    return [
        {"_name": series.get("name"), **series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
        for series in result.get("series", [])
        for values in series["values"]
    ]


# No backslashes in names: InfluxDB 1.6 keeps "\\\\" in a tag or key as two characters and cannot
# parse a name ending in one, so line_protocol refuses them (see test_names_with_a_backslash_or_newline_are_refused).
# Protocol ids cannot hold a backslash, so only string fields (topics, reasons) carry them here.
TRICKY = ["a b", "a,b", "a=b", 'a"b', "a'b", "Київ-1", "ñ=, \"' mix"]


async def test_tricky_names_round_trip_through_the_server(influxd: InfluxInfo, store: InfluxStore) -> None:
    # Tag values (device, gateway) through the store, in both directions (line protocol and InfluxQL).
    for i, name in enumerate(TRICKY):
        assert await store.write_batch(f"m{i}", f"gw {name}", [pm25(name, float(i), RECENT)])
    latest = {r.device: (r.value, r.gateway) for r in await store.latest()}
    assert latest == {name: (float(i), f"gw {name}") for i, name in enumerate(TRICKY)}
    for i, name in enumerate(TRICKY):
        found = await store.series(name, "pm25", RECENT, RECENT + timedelta(minutes=1), timedelta(minutes=1))
        assert found is not None
        assert [(w.count, w.last) for w in found.windows] == [(1, float(i))]
        assert [s.device for s in await store.list_series(name)] == [name]
    # Measurement names, tag keys, field keys and string fields, written with line() and read back raw.
    http = InfluxHttp(settings(influxd))
    at_ms = int(RECENT.timestamp() * 1000)
    try:
        for i, name in enumerate(TRICKY):
            text = line(f"m {name}", {f"k {name}": name}, {f"f {name}": f'{name} \\ \\"', "n": i}, at_ms + i)
            await http.write([text], precision="ms", deadline=time.monotonic() + 10, rp="raw")
    finally:
        await http.close()
    [result] = influxd.query('SELECT * FROM "raw"./^m /', db=DB)
    seen = {}
    for series in result["series"]:
        row = dict(zip(series["columns"], series["values"][0], strict=True))
        name = TRICKY[row["n"]]
        seen[name] = (series["name"], row[f"k {name}"], row[f"f {name}"])
    assert seen == {name: (f"m {name}", name, f'{name} \\ \\"') for name in TRICKY}


@pytest.mark.parametrize("name", ["a\\b", "trailing\\", "two\nlines"])
def test_names_with_a_backslash_or_newline_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="backslash or a newline"):
        line("m", {"device": name}, {"v": 1.0}, 1)
    with pytest.raises(ValueError, match="backslash or a newline"):
        line(name, {}, {"v": 1.0}, 1)


async def test_batches_are_chunked_and_gzipped_on_the_wire(influxd: InfluxInfo) -> None:
    sent: list[SentRequest] = []
    async with await InfluxStore.open(settings(influxd, batch_points=5000), request_hook=sent.append) as store:
        sent.clear()
        readings = [pm25(f"aq-{i % 100}", i * 0.25, RECENT + timedelta(seconds=i // 100)) for i in range(12_345)]
        assert await store.write_messages([MessageWrite("gw-1:b:1", "gw-1", readings)]) == [True]
        writes = [r for r in sent if r.path == "/write"]
        ms_writes = [r for r in writes if r.params["precision"] == "ms"]
        assert len(ms_writes) == 3  # 5000 + 5000 + 2345 points
        for request in writes:
            assert request.headers["content-encoding"] == "gzip"
            assert request.content[:2] == b"\x1f\x8b"
        assert sorted(len(gzip.decompress(r.content).splitlines()) for r in ms_writes) == [2345, 5000, 5000]
        assert (await store.counts()).readings == 12_345
    async with await InfluxStore.open(settings(influxd, compression="none"), request_hook=sent.append) as plain:
        sent.clear()
        await plain.write_batch("gw-1:b:2", "gw-1", [pm25("aq-1", 1.0, RECENT)])
        [request] = [r for r in sent if r.path == "/write" and r.params["precision"] == "ms"]
        assert "content-encoding" not in request.headers
        assert request.content.startswith(b"air,device=aq-1,gateway=gw-1 pm25=1.0 ")


async def test_writes_wait_out_an_outage_and_nothing_is_lost_or_doubled(influxd: InfluxInfo) -> None:
    async with await InfluxStore.open(settings(influxd, retry_initial_s=0.05, retry_max_s=0.5)) as store:
        first = [pm25(f"aq-{i}", 1.0, RECENT) for i in range(50)]
        await store.write_batch("gw-1:b:1", "gw-1", first)
        influxd.stop()
        batch = [
            MessageWrite(
                f"gw-1:b:{k}", "gw-1", [pm25(f"aq-{i}", 2.0, RECENT + timedelta(seconds=k)) for i in range(50)]
            )
            for k in range(2, 12)
        ]
        pending = asyncio.create_task(store.write_messages(batch))

        async def retried() -> bool:
            return store.http.stats.retries >= 3

        await eventually(retried, what="retries while influxd is down")
        assert not pending.done()
        await asyncio.to_thread(influxd.start)
        assert await asyncio.wait_for(pending, timeout=30) == [True] * 10
        assert store.http.stats.retries >= 3
        # Redelivered (recognised) and re-sent under new ids (not recognised): still 550 readings.
        assert await store.write_messages(batch[:2]) == [False, False]
        again = [MessageWrite(f"gw-1:again:{m.message_id}", "gw-1", m.readings) for m in batch]
        assert await store.write_messages(again) == [True] * 10
        counts = await store.counts()
        assert (counts.readings, counts.series) == (550, 50)


async def test_an_outage_past_the_deadline_is_a_retryable_store_error(influxd: InfluxInfo) -> None:
    async with await InfluxStore.open(settings(influxd, retry_initial_s=0.05, retry_deadline_s=0.5)) as store:
        influxd.stop()
        started = time.monotonic()
        with pytest.raises(StoreError) as raised:
            await store.write_batch("gw-1:b:1", "gw-1", [pm25("aq-1", 1.0, RECENT)])
        assert raised.value.retryable
        assert influxd.url in str(raised.value)
        assert time.monotonic() - started < 5
        await asyncio.to_thread(influxd.start)
        # The message was not remembered as written: the retry writes it.
        assert await store.write_batch("gw-1:b:1", "gw-1", [pm25("aq-1", 1.0, RECENT)])


async def test_a_refused_point_is_dead_lettered_and_the_rest_written(influxd: InfluxInfo, store: InfluxStore) -> None:
    # no2 is a string in this shard: a float no2 point conflicts; pm25 points beside it are fine.
    at_ms = int(RECENT.timestamp() * 1000)
    influxd_write(influxd, f'air,device=other,gateway=gw-0 no2="text" {at_ms}')
    good = [pm25(f"aq-{i}", float(i), RECENT + timedelta(seconds=i)) for i in range(40)]
    bad = Reading("aq-bad", "no2", 12.5, "ug/m3", RECENT + timedelta(seconds=5))
    message = MessageWrite("gw-1:b:1", "gw-1", [*good[:20], bad, *good[20:]])
    assert await store.write_messages([message, MessageWrite("gw-2:b:1", "gw-2", [pm25("aq-x", 1, RECENT)])]) == [
        True,
        True,
    ]
    assert (await store.counts()).readings == 41 + 1  # 40 + aq-x + the string no2 written above
    [letter] = await store.dead_letters(10)
    assert letter.letter.kind is DeadLetterKind.VOCABULARY
    assert "field type conflict" in letter.letter.reason
    assert letter.letter.payload.startswith(b"air,device=aq-bad,gateway=gw-1 no2=12.5 ")
    assert (letter.letter.gateway, letter.letter.message_id) == ("gw-1", "gw-1:b:1")
    assert store.refused_points == 1


async def test_a_point_older_than_raw_retention_is_dead_lettered_as_timestamp(influxd: InfluxInfo) -> None:
    async with await InfluxStore.open(settings(influxd, raw_retention_days=1)) as store:
        old = pm25("aq-1", 1.0, NOW - timedelta(days=3))
        assert await store.write_batch("gw-1:b:1", "gw-1", [old, pm25("aq-1", 2.0, RECENT)])
        [letter] = await store.dead_letters(5)
        assert letter.letter.kind is DeadLetterKind.TIMESTAMP
        assert "beyond retention policy" in letter.letter.reason
        assert [r.value for r in await store.latest()] == [2.0]


def influxd_write(influxd: InfluxInfo, text: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{influxd.url}/write?db={DB}&rp=raw&precision=ms", data=text.encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


async def test_retention_policies_and_continuous_queries_are_created_once(influxd: InfluxInfo) -> None:
    async with await InfluxStore.open(settings(influxd)) as store:
        assert store.schema_report.changes
    policies = {
        r["name"]: (r["duration"], r["default"]) for r in rows_of(influxd, f'SHOW RETENTION POLICIES ON "{DB}"')
    }
    assert policies["raw"] == ("720h0m0s", True)
    assert policies["rollup_1m"] == ("9600h0m0s", False)
    assert policies["rollup_1h"] == ("0s", False)
    queries = {r["name"]: r["query"] for r in rows_of(influxd, "SHOW CONTINUOUS QUERIES") if r["_name"] == DB}
    assert set(queries) == {f"misto_rollup_{span}_{m}" for span in ("1m", "1h") for m in READING_MEASUREMENTS}
    hourly = queries["misto_rollup_1h_air"]  # as InfluxDB prints it: without the quotes
    assert "INTO misto_test.rollup_1h.air FROM misto_test.rollup_1m.air" in hourly
    assert "sum(sum_pm25) / sum(count_pm25) AS mean_pm25" in hourly
    assert "RESAMPLE EVERY 1m FOR 65m" in hourly
    # Opening again changes nothing; changed settings alter the policy and replace the queries.
    async with await InfluxStore.open(settings(influxd)) as again:
        assert again.schema_report.changes == []
    async with await InfluxStore.open(settings(influxd, raw_retention_days=7, rollup_every_s=30)) as changed:
        assert any(c.startswith('ALTER RETENTION POLICY "raw"') for c in changed.schema_report.changes)
        assert sum(c.startswith("DROP CONTINUOUS QUERY") for c in changed.schema_report.changes) == 14
    assert {r["name"]: r["duration"] for r in rows_of(influxd, f'SHOW RETENTION POLICIES ON "{DB}"')}[
        "raw"
    ] == "168h0m0s"


async def test_continuous_queries_fill_the_rollups_and_long_ranges_read_them(influxd: InfluxInfo) -> None:
    # CQs every second (the fixture runs them every second); the data is recent, so the store
    # leaves it to them rather than rolling it up itself.
    async with await InfluxStore.open(settings(influxd, rollup_every_s=1, rollup_lateness_s=300)) as store:
        now = datetime.now(UTC)
        minute = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
        readings = [pm25("aq-1", 0.25 * i, minute + timedelta(seconds=5 * i)) for i in range(12)]
        await store.write_batch("gw-1:b:1", "gw-1", readings)
        assert not store.rollups.pending

        def rolled(rp: str) -> Callable[[], Any]:
            async def check() -> list[dict[str, Any]]:
                return rows_of(influxd, f'SELECT * FROM "{rp}"."air" WHERE device = \'aq-1\'')

            return check

        [one] = await eventually(rolled("rollup_1m"), what="the 1-minute CQ output", deadline_s=30)
        assert (one["mean_pm25"], one["min_pm25"], one["max_pm25"], one["count_pm25"], one["last_pm25"]) == (
            1.375,
            0.0,
            2.75,
            12,
            2.75,
        )
        assert one["sum_pm25"] == 16.5
        [hour] = await eventually(rolled("rollup_1h"), what="the 1-hour CQ output", deadline_s=30)
        assert (hour["mean_pm25"], hour["count_pm25"], hour["last_pm25"]) == (1.375, 12, 2.75)
        explicit = await store.series(
            "aq-1", "pm25", minute, minute + timedelta(minutes=1), timedelta(minutes=1), resolution=Resolution.MINUTE
        )
        assert explicit is not None
        assert [(w.count, w.mean, w.last) for w in explicit.windows] == [(12, 1.375, 2.75)]
        # A range reaching back past raw retention is read from the rollup that still holds it.
        long_ago = now - timedelta(days=60)
        hourly = await store.series("aq-1", "pm25", long_ago, now, timedelta(hours=1))
        assert hourly is not None
        assert hourly.resolution is Resolution.HOUR
        assert sum(w.count for w in hourly.windows) == 12
        five = await store.series("aq-1", "pm25", long_ago, now, timedelta(minutes=5))
        assert five is not None
        assert five.resolution is Resolution.MINUTE
        assert sum(w.count for w in five.windows) == 12
        odd = await store.series("aq-1", "pm25", long_ago, now, timedelta(seconds=7))
        assert odd is not None
        assert odd.resolution is Resolution.RAW  # no rollup divides 7 s


async def test_late_data_is_rolled_up_by_the_store(influxd: InfluxInfo, store: InfluxStore) -> None:
    day = (NOW - timedelta(days=2)).replace(hour=5, minute=0, second=0)
    await store.write_batch("gw-1:b:1", "gw-1", [pm25("aq-1", v, day + timedelta(minutes=v)) for v in (1.0, 2.0, 30.0)])
    hourly = await store.series(
        "aq-1", "pm25", day, day + timedelta(hours=1), timedelta(hours=1), resolution=Resolution.HOUR
    )
    assert hourly is not None
    assert [(w.count, w.min, w.max, w.last) for w in hourly.windows] == [(3, 1.0, 30.0, 30.0)]
    assert store.rollups.statements_run >= 2


class AuthInflux(InfluxInfo):
    def config_text(self) -> str:
        return super().config_text().replace("[http]\n", "[http]\n  auth-enabled = true\n")


async def test_credentials_are_checked_and_errors_name_the_server(tmp_path: Path) -> None:
    workdir = tmp_path / "influxd-auth"
    workdir.mkdir()
    server = AuthInflux(host=LOOPBACK, port=free_port(), rpc_port=free_port(), workdir=workdir)
    server.start()
    try:
        server.query("CREATE USER boss WITH PASSWORD 'admin-secret-1' WITH ALL PRIVILEGES")  # no admin yet: allowed
        wrong = InfluxStoreSettings(
            url=server.url, database=DB, username="boss", password=SecretStr("not-the-password-9")
        )
        with pytest.raises(InfluxUnusableError) as raised:
            await InfluxStore.open(wrong)
        assert not raised.value.retryable
        assert server.url in str(raised.value)
        assert DB in str(raised.value)
        right = InfluxStoreSettings(url=server.url, database=DB, username="boss", password=SecretStr("admin-secret-1"))
        async with await InfluxStore.open(right) as store:
            assert await store.write_batch("gw-1:b:1", "gw-1", [pm25("aq-1", 1.0, RECENT)])
            assert [r.value for r in await store.latest()] == [1.0]
        nobody = InfluxStoreSettings(url=server.url, database="elsewhere", token=SecretStr("a-token-that-1x-rejects"))
        with pytest.raises(InfluxUnusableError, match=r"credentials refused|authoriz"):
            await InfluxStore.open(nobody)
    finally:
        server.stop()


async def test_write_throughput_is_measured(influxd: InfluxInfo) -> None:
    """Prints (does not assert) readings/s of write_messages into this influxd: 100,000 readings,
    one pm25 point each, messages of 500 readings, 10 messages (5,000 lines) per call."""
    async with await InfluxStore.open(settings(influxd)) as store:
        base = NOW - timedelta(minutes=30)
        messages = [
            MessageWrite(
                f"gw-{m % 20}:b:{m}",
                f"gw-{m % 20}",
                [pm25(f"aq-{m % 20}-{i}", (i % 40) * 0.25, base + timedelta(seconds=m // 20)) for i in range(500)],
            )
            for m in range(200)
        ]
        started = time.perf_counter()
        for k in range(0, len(messages), 10):
            await store.write_messages(messages[k : k + 10])
        elapsed = time.perf_counter() - started
        print(
            f"\nInfluxStore.write_messages: 100,000 readings in {elapsed:.2f} s = {100_000 / elapsed:,.0f} readings/s"
        )
        assert (await store.counts()).readings == 100_000


SAMPLE = Path(__file__).resolve().parents[1] / "config" / "misto-cloud.sample.yaml"


def test_the_sample_documents_every_influx_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    block = text.split("# store:\n", 1)[1].split("\n\n", 1)[0]
    for key in InfluxStoreSettings.model_fields:
        assert re.search(rf"^#\s+(# )?{key}:", block, re.MULTILINE), f"store.{key} missing from the sample"
    uncommented = "\n".join(line.removeprefix("# ") for line in block.splitlines())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "influx-password").write_text("a-real-influx-password-1\n", encoding="utf-8")
    loaded = load_settings(overrides={"store": yaml.safe_load("store:\n" + uncommented)["store"]})
    assert isinstance(loaded.store, InfluxStoreSettings)
    assert loaded.store == InfluxStoreSettings(
        username="misto", password_file=Path("secrets/influx-password")
    )  # every other value in the sample is the default
    assert loaded.store.password_value() == "a-real-influx-password-1"
    assert loaded.control.database(loaded.store) == Path("misto-control.db")
