"""How fast one ingester drains a backlog from a real Mosquitto into the SQLite store.

    .venv/bin/python bench/ingest/pipeline_probe.py [--readings 100] [--messages 20000]

The ingester's persistent session is created, the ingester stops, ``--messages`` telemetry
messages of ``--readings`` readings each are published (QoS 1) and queued by the broker for it,
then the ingester starts and the time and CPU it takes to store and acknowledge all of them is
measured (batching, validation at the door with device ownership, one ``write_messages`` per
batch, ack after commit). CPU is read per thread from /proc: the event loop (paho's packet
handling, decode, checks, batching, acks: the adapter drives paho from the loop) and the SQLite
worker thread (the store's own cost); a "paho" thread appears only with a paho client that runs
its own (the publisher here finishes before the drain starts).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fixtures, when run as a script

from misto.cloud.ingest.door import Door  # noqa: E402
from misto.cloud.ingest.ingester import Batching, Ingester  # noqa: E402
from misto.cloud.ingest.link_config import SubscriberConfig  # noqa: E402
from misto.cloud.ingest.mqtt import MqttSubscriber  # noqa: E402
from misto.cloud.ingest.ownership import FirstGatewayOwnership  # noqa: E402
from misto.cloud.ingest.stats import IngestStats  # noqa: E402
from misto.cloud.storage.sqlite import SqliteStore  # noqa: E402
from misto.protocol import Channel, Reading, Telemetry, codec, topics  # noqa: E402
from tests.fixtures.mosquitto import BrokerInfo, new_broker  # noqa: E402

METRICS = (("pm25", "ug/m3", 12.5), ("pm10", "ug/m3", 20.0), ("no2", "ug/m3", 31.0), ("temperature", "Cel", 21.5))
GATEWAYS = 10
TICK = os.sysconf("SC_CLK_TCK")
THREAD_KINDS = (("MainThread", "event loop"), ("misto-sqlite", "sqlite"), ("paho", "paho"))


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process, by thread kind (threads of one kind summed)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    totals: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
        name = names.get(int(task.name), "other")
        kind = next((kind for prefix, kind in THREAD_KINDS if name.startswith(prefix)), "other")
        totals[kind] = totals.get(kind, 0.0) + seconds
    return totals


def payloads(messages: int, readings: int) -> list[tuple[str, bytes]]:
    """``messages`` telemetry messages spread over ten gateways, each reading a distinct instant."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    out = []
    for seq in range(messages):
        gateway = f"gw-{seq % GATEWAYS}"
        at = start + timedelta(milliseconds=seq)
        rows = [
            Reading(f"{gateway}-dev-{i // len(METRICS)}", metric, value, unit, at)
            for i, (metric, unit, value) in ((i, METRICS[i % len(METRICS)]) for i in range(readings))
        ]
        message = Telemetry(schema=1, gateway=gateway, boot="probe", seq=seq, sent_at=at, readings=rows)
        out.append((topics.build(gateway, Channel.TELEMETRY), codec.encode(message)))
    return out


def publish(broker: BrokerInfo, messages: list[tuple[str, bytes]]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe-publisher", protocol=paho.MQTTv5)
    client.username_pw_set("admin", broker.users["admin"])
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=60)
    finally:
        client.disconnect()
        client.loop_stop()


async def probe(args: argparse.Namespace, workdir: Path) -> None:
    broker = new_broker(workdir / "mosquitto")
    try:
        config = SubscriberConfig(
            host=broker.host,
            port=broker.port,
            client_id="probe-ingester",
            username="ingester",
            password=broker.users["ingester"],
            session_expiry_s=3600,
        )
        subscription = [topics.subscription(Channel.TELEMETRY)]
        async with MqttSubscriber(config, subscription, queue_size=args.queue_size) as first:
            assert await first.wait_connected(10), first.last_error
        messages = payloads(args.messages, args.readings)
        size = sum(len(p) for _, p in messages) / len(messages)
        began = time.perf_counter()
        publish(broker, messages)
        published_s = time.perf_counter() - began
        del messages
        async with await SqliteStore.open(workdir / "misto.db") as store:
            stats = IngestStats()
            subscriber = MqttSubscriber(config, subscription, queue_size=args.queue_size, stats=stats)
            door = Door(max_future=timedelta(minutes=5), max_age=timedelta(days=14), ownership=FirstGatewayOwnership())
            batching = Batching(max_messages=args.batch_max_messages, max_readings=args.batch_max_readings)
            ingester = Ingester(store, subscriber, stats=stats, door=door, batching=batching)
            cpu0, wall0 = thread_cpu(), time.perf_counter()
            await subscriber.start()
            task = asyncio.create_task(ingester.run())
            deadline = time.monotonic() + args.timeout
            while stats.acked < args.messages:
                if time.monotonic() > deadline or task.done():
                    raise SystemExit(f"only {stats.acked} of {args.messages} acknowledged: {task}")
                await asyncio.sleep(0.01)
            wall, cpu1 = time.perf_counter() - wall0, thread_cpu()
            subscriber.pause()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await subscriber.stop()
            counts = await store.counts()
    finally:
        broker.stop()
    cpu = {name: cpu1.get(name, 0.0) - cpu0.get(name, 0.0) for name in cpu1}
    total_cpu = sum(cpu.values())
    store_cpu = cpu.get("sqlite", 0.0)
    readings = args.messages * args.readings
    assert counts.readings == stats.readings_stored == readings, (counts, stats.readings_stored)
    p = sorted(stats.recent_write_seconds)
    print(f"# ingest pipeline probe, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(
        f"{args.messages} messages x {args.readings} readings ({size:.0f} bytes each), published in {published_s:.1f}s"
    )
    print(f"drained in {wall:.2f}s: {args.messages / wall:,.0f} messages/s, {readings / wall:,.0f} readings/s")
    print(f"batches: {stats.batches}, mean {stats.batch_readings.total / stats.batches:,.0f} readings, "
          f"write p50 {p[len(p) // 2] * 1000:.1f} ms, p99 {p[int(len(p) * 0.99)] * 1000:.1f} ms")  # fmt: skip
    print(f"ingester CPU {total_cpu:.2f}s: {readings / total_cpu:,.0f} readings per CPU-second, "
          f"{args.messages / total_cpu:,.0f} messages per CPU-second")  # fmt: skip
    if total_cpu > store_cpu:
        print(f"  without the SQLite worker ({store_cpu:.2f}s): {readings / (total_cpu - store_cpu):,.0f} readings "
              f"and {args.messages / (total_cpu - store_cpu):,.0f} messages per CPU-second")  # fmt: skip
    print("  per thread: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in sorted(cpu.items()) if seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--readings", type=int, default=100)
    parser.add_argument("--queue-size", type=int, default=1000)
    parser.add_argument("--batch-max-messages", type=int, default=500)
    parser.add_argument("--batch-max-readings", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="misto-probe-") as workdir:
        asyncio.run(probe(args, Path(workdir)))


if __name__ == "__main__":
    main()
