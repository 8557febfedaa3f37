"""Serving serial devices: every device ticks together once per ``period`` (a fixed grid, no
drift), values follow the simulated clock (or are frozen), and an optional HTTP control endpoint
shows the state and queues faults:

- ``GET /state``: every device's values, counts of messages and injected faults;
- ``POST /devices/<index>/faults`` with JSON ``{"garbage": 2, "corrupt": 1, "truncate": 1,
  "silence": 3.5}`` (any subset; counts of messages, silence in seconds): the device's state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from misto.sim.clock import Clock, system_clock
from misto.sim.errors import SpecError
from misto.sim.http_lite import HttpError, HttpServer, Request, Response, json_response
from misto.sim.serial_devices.faults import FaultKind
from misto.sim.serial_devices.runner import SerialDeviceRunner, SerialSpec
from misto.sim.state_file import utc_text, write_atomically

log = logging.getLogger(__name__)

DEFAULT_PERIOD = 1.0


class SerialSimulator:
    """Serves ``specs`` on pseudo-terminals until closed. Use as an async context manager."""

    def __init__(
        self,
        specs: Sequence[SerialSpec],
        *,
        seed: int = 0,
        freeze: bool = False,
        period: float = DEFAULT_PERIOD,
        rates: dict[FaultKind, float] | None = None,
        clock: Clock = system_clock,
        control: tuple[str, int] | None = None,
        state_file: Path | None = None,
    ) -> None:
        if not specs:
            raise ValueError("nothing to serve: no serial devices")
        paths = [s.path.absolute() for s in specs]
        duplicates = sorted({str(p) for p in paths if paths.count(p) > 1})
        if duplicates:
            raise ExceptionGroup("bad serial specs", [SpecError(p, "two devices on one path") for p in duplicates])
        if not period > 0:
            raise ValueError(f"period must be positive, got {period}")
        self.freeze = freeze
        self.period = period
        self.clock = clock
        self.state_file = state_file
        self.state_file_errors = 0
        self.runners = [SerialDeviceRunner(spec, seed=seed, rates=rates) for spec in specs]
        self.control = HttpServer(host=control[0], port=control[1], handler=self.handle) if control else None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        at = self.clock()
        try:
            for runner in self.runners:
                runner.update(at)
                runner.open()
            if self.control is not None:
                await self.control.start()
        except BaseException:
            await self.close()
            raise

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Tick every device once per period until ``stop`` is set (or cancelled)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        waiter = asyncio.ensure_future((stop or asyncio.Event()).wait())
        try:
            while not waiter.done():
                self.tick(loop.time())
                await self._write_state()
                due = max(due + self.period, loop.time())  # fell behind (a stalled machine): skip, no burst
                await asyncio.wait({waiter}, timeout=due - loop.time())
        finally:
            waiter.cancel()

    def tick(self, now: float) -> None:
        if not self.freeze:
            at = self.clock()
            for runner in self.runners:
                runner.update(at)
        for runner in self.runners:
            runner.tick(now)

    def state(self) -> dict[str, Any]:
        now = self._loop.time() if self._loop else 0.0
        at = self.runners[0].values_at
        return {
            "updated_at": utc_text(at) if at else None,
            "devices": [runner.state(now) for runner in self.runners],
        }

    async def _write_state(self) -> None:
        if self.state_file is None:
            return
        try:
            await asyncio.to_thread(write_atomically, self.state_file, self.state())
        except OSError as exc:
            self.state_file_errors += 1
            if self.state_file_errors == 1:
                log.error("cannot write state file %s: %s (counted)", self.state_file, exc.strerror)

    async def handle(self, request: Request) -> Response:
        if request.path in ("/", "/state"):
            if request.method != "GET":
                raise HttpError(405, "use GET")
            return json_response(self.state())
        parts = request.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "devices" and parts[2] == "faults":
            if request.method != "POST":
                raise HttpError(405, "use POST")
            runner = self._runner(parts[1])
            self._queue_faults(runner, request.json())
            return json_response(runner.state(asyncio.get_running_loop().time()))
        raise HttpError(404, "routes: GET /state, POST /devices/<index>/faults")

    def _runner(self, index: str) -> SerialDeviceRunner:
        if not index.isdigit() or not 0 <= int(index) < len(self.runners):
            raise HttpError(404, f"no device {index!r}: devices are 0..{len(self.runners) - 1}, in --device order")
        return self.runners[int(index)]

    def _queue_faults(self, runner: SerialDeviceRunner, body: Any) -> None:
        if not isinstance(body, dict):
            raise HttpError(400, 'body must be a JSON object such as {"garbage": 2, "silence": 3}')
        unknown = sorted(set(body) - {k.value for k in FaultKind})
        if unknown:
            raise HttpError(400, f"unknown fault(s) {unknown}; known: {', '.join(k.value for k in FaultKind)}")
        problems = [
            f"{k}: must be a whole number of messages (0 or more)"
            for k, v in body.items()
            if k != "silence" and (isinstance(v, bool) or not isinstance(v, int) or v < 0)
        ]
        silence = body.get("silence", 0)
        if isinstance(silence, bool) or not isinstance(silence, int | float):
            problems.append("silence: must be a number of seconds")
        if problems:
            raise HttpError(400, "; ".join(problems))
        try:
            for kind in (FaultKind.GARBAGE, FaultKind.CORRUPT, FaultKind.TRUNCATE):
                runner.faults.queue(kind, body.get(kind.value, 0))
            if silence:
                runner.faults.silence(float(silence), asyncio.get_running_loop().time())
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        for runner in self.runners:
            runner.close()


async def run_serial(
    specs: Sequence[SerialSpec],
    *,
    on_ready: Callable[[SerialSimulator], None] | None = None,
    stop: asyncio.Event | None = None,
    **options: Any,
) -> None:
    """Serve ``specs`` until ``stop`` is set; ``on_ready`` is called once every terminal exists."""
    async with SerialSimulator(specs, **options) as sim:
        if on_ready is not None:
            on_ready(sim)
        await sim.run(stop)
