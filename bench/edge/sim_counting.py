"""Serve simulated Modbus TCP devices, as ``misto-sim serve`` does, and count what each answers.

    .venv/bin/python bench/edge/sim_counting.py --counts FILE --device aq1@127.0.0.1:5020 [...]

The bench needs an independent count of the samples a gateway *read*, to compare with the
samples that reached the broker. This launcher runs the simulator library (``misto.sim``)
unchanged and wraps its per-request hook (``misto.sim.modbus.responder.UnitResponder.answer``,
which every Modbus request to a unit goes through) to count, per device and register address,
the read requests it answered.

Signals: SIGUSR2 writes the counts so far to ``--counts``; SIGUSR1 freezes the devices (every
later request gets exception 06, device busy, and is not counted) and writes them; SIGTERM/SIGINT
write them again and exit. Counts file: ``{"written_at": <unix time>, "frozen_at": <unix time or
null>, "devices": [{"port", "unit", "model", "requests", "reads": {"<address>": <answered reads
covering it>}}]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from misto.sim.simulator import Simulator
from misto.sim.spec import parse_device_specs

HOOK_MISSING = 3


class Counts:
    """Answered reads per device and register address; devices are told apart by their
    ``SimulatedDevice`` instance."""

    def __init__(self) -> None:
        self.frozen_at: float | None = None
        self.reads: dict[int, Counter[int]] = {}  # id(SimulatedDevice) -> address -> answered reads
        self.requests: Counter[int] = Counter()

    def count(self, device: object, address: int, count: int) -> None:
        key = id(device)
        self.requests[key] += 1
        per_address = self.reads.setdefault(key, Counter())
        for addr in range(address, address + count):
            per_address[addr] += 1

    def install(self) -> None:
        """Wrap the simulator's per-request hook, ``UnitResponder.answer(pdu) -> response pdu`` (every
        request to a served unit goes through it). Imported by name: it is internal to the simulator."""
        try:
            pdu = importlib.import_module("misto.sim.modbus.pdu")
            responder = importlib.import_module("misto.sim.modbus.responder").UnitResponder
            original: Callable[[Any, bytes], bytes] = responder.answer
        except (ImportError, AttributeError) as exc:
            print(
                f"sim_counting: the simulator changed ({exc}): misto.sim.modbus.responder.UnitResponder.answer "
                "is what bench/edge/sim_counting.py counts; update it",
                file=sys.stderr,
            )
            raise SystemExit(HOOK_MISSING) from None
        counts = self

        def answer(self: Any, request_pdu: bytes) -> bytes:
            if counts.frozen_at is not None:
                raise pdu.ModbusRefusal(pdu.ExceptionCode.SERVER_DEVICE_BUSY)
            response = original(self, request_pdu)  # raises ModbusRefusal for an exception response
            request = pdu.parse_request(request_pdu)
            if request.values is None:
                counts.count(self.device, request.address, request.count)
            return response

        responder.answer = answer

    def write(self, path: Path, sim: Simulator) -> None:
        devices = [
            {
                "port": served.port,
                "unit": served.unit,
                "model": served.model.id,
                "requests": self.requests[id(served.device)],
                "reads": {str(a): n for a, n in sorted(self.reads.get(id(served.device), Counter()).items())},
            }
            for served in sim.devices
        ]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"written_at": time.time(), "frozen_at": self.frozen_at, "devices": devices}), encoding="utf-8"
        )
        os.replace(tmp, path)


async def serve(args: argparse.Namespace) -> None:
    counts = Counts()
    counts.install()
    specs = parse_device_specs(args.device)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with Simulator(specs, seed=args.seed, update_interval=args.update_interval) as sim:

        def freeze() -> None:
            if counts.frozen_at is None:
                counts.frozen_at = time.time()
            counts.write(args.counts, sim)

        loop.add_signal_handler(signal.SIGUSR1, freeze)
        loop.add_signal_handler(signal.SIGUSR2, counts.write, args.counts, sim)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        for served in sim.devices:
            print(served.serving_line(), flush=True)
        await stop.wait()
        counts.write(args.counts, sim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", action="append", required=True, metavar="MODEL@HOST:PORT[/UNIT]")
    parser.add_argument("--counts", type=Path, required=True, metavar="FILE")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--update-interval", type=float, default=1.0, metavar="SECONDS")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
