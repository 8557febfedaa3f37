"""Load for the ingest tests: telemetry written to a file, one JSON message per line, published by
``mosquitto_pub -l`` (QoS 1, C, fast) in its own process, so the test process's memory and CPU
are the ingester's alone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from cloud.tests.support import eventually
from misto.protocol import Channel, Reading, Telemetry, codec, topics
from tests.fixtures.mosquitto import BrokerInfo, find_binary
from tests.fixtures.processes import ManagedProcess

METRICS = (("pm25", "ug/m3", 12.5), ("pm10", "ug/m3", 20.0), ("no2", "ug/m3", 31.0), ("temperature", "Cel", 21.5))


def telemetry_lines(gateway: str, count: int, readings: int, *, start: datetime) -> Iterator[bytes]:
    """``count`` messages of ``readings`` readings each; every message's readings at its own instant."""
    for seq in range(count):
        at = start + timedelta(milliseconds=seq)
        rows = [
            Reading(f"{gateway}-dev-{i // len(METRICS)}", metric, value, unit, at)
            for i, (metric, unit, value) in ((i, METRICS[i % len(METRICS)]) for i in range(readings))
        ]
        yield codec.encode(Telemetry(schema=1, gateway=gateway, boot="load", seq=seq, sent_at=at, readings=rows))


class LinePublisher:
    """Publishes every line of a file as one QoS 1 message on ``gateway``'s telemetry topic."""

    def __init__(self, broker: BrokerInfo, gateway: str, password: str, workdir: Path) -> None:
        self.broker = broker
        self.gateway = gateway
        self.password = password
        self.workdir = workdir
        self.path = workdir / f"{gateway}.jsonl"
        self.count = 0
        self.process: ManagedProcess | None = None

    def write(self, lines: Iterator[bytes]) -> None:
        with self.path.open("wb") as out:
            for line in lines:
                out.write(line + b"\n")
                self.count += 1

    def start(self) -> None:
        argv = [
            find_binary("mosquitto_pub"),
            *("-h", self.broker.host, "-p", str(self.broker.port), "-V", "mqttv5", "-q", "1", "-M", "200"),
            *("-u", self.gateway, "-P", self.password, "-i", f"load-{self.gateway}"),
            *("-t", topics.build(self.gateway, Channel.TELEMETRY), "-l"),
        ]
        log_path = self.workdir / f"publisher-{self.gateway}.log"
        with self.path.open("rb") as lines, log_path.open("ab") as log:
            popen = subprocess.Popen(argv, stdin=lines, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.process = ManagedProcess(popen, name=f"publisher-{self.gateway}", log_path=log_path)
        ManagedProcess.running.add(self.process)

    def done(self) -> bool:
        return self.process is not None and not self.process.alive()

    async def wait(self, deadline_s: float) -> None:
        """Until every line is published (mosquitto_pub exits once all are acknowledged)."""

        async def done() -> bool:
            return self.done()

        await eventually(done, what=f"the publisher of {self.gateway} to finish", deadline_s=deadline_s)
        assert self.process is not None
        code = self.process.stop()
        assert code == 0, f"mosquitto_pub exited with {code}:\n{self.process.log_text()}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
