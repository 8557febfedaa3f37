"""Cost of the wire codec: encode and strict decode of telemetry batches of several sizes.

    .venv/bin/python bench/protocol_codec.py [--seconds 1.0]

Prints, per batch size: message bytes, encode and decode µs per message and per reading,
and decoded readings per CPU-second. Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime

from misto.protocol import Reading, Telemetry, codec

METRICS = (("pm25", "ug/m3"), ("pm10", "ug/m3"), ("no2", "ug/m3"), ("LAeq", "dB(A)"), ("temperature", "Cel"))


def batch(size: int) -> Telemetry:
    now = datetime.now(UTC)
    readings = [
        Reading(device=f"dev-{i // 5:04d}", metric=METRICS[i % 5][0], value=12.5 + i, unit=METRICS[i % 5][1], ts=now)
        for i in range(size)
    ]
    return Telemetry(schema=1, gateway="gw-bench", boot="bench", seq=1, sent_at=now, readings=readings)


def per_call(fn: object, seconds: float) -> float:
    """CPU seconds per call of ``fn``, measured over about ``seconds``."""
    assert callable(fn)
    calls = 0
    start = time.process_time()
    deadline = start + seconds
    while (now := time.process_time()) < deadline:
        for _ in range(100):
            fn()
        calls += 100
    return (now - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    print(f"# protocol codec, Python {platform.python_version()}, {platform.machine()}")
    print(f"{'readings':>8} {'bytes':>8} {'encode µs':>10} {'decode µs':>10} {'dec µs/rdg':>10} {'readings/CPU-s':>15}")
    for size in (1, 6, 50, 500):
        message = batch(size)
        payload = codec.encode(message)
        enc = per_call(lambda m=message: codec.encode(m), args.seconds)
        dec = per_call(lambda p=payload: codec.decode_telemetry(p), args.seconds)
        row = f"{size:>8} {len(payload):>8} {enc * 1e6:>10.2f} {dec * 1e6:>10.2f}"
        print(f"{row} {dec * 1e6 / size:>10.3f} {size / dec:>15,.0f}")


if __name__ == "__main__":
    main()
