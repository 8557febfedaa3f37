"""The simulator as a library: serve a set of devices, refresh their registers on a schedule,
apply injected faults and keep the state file current. The CLI's ``serve`` is a thin wrapper.

    async with Simulator([DeviceSpec("aq1", "127.0.0.1", 0)], seed=1) as sim:
        port = sim.devices[0].port      # bound port (0 asked the OS for a free one)
        sim.faults(0).add(Fault(kind=FaultKind.DROPOUT, p=0.5))
        ...                             # talk Modbus TCP to it
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from misto.sim.clock import Clock, system_clock
from misto.sim.device import SimulatedDevice
from misto.sim.devices import MODELS, DeviceModel
from misto.sim.errors import SpecError, StateFileError
from misto.sim.faults import FaultSpec, FaultState
from misto.sim.modbus import AbsentUnit, Bus, Framing, SerialLineServer, TcpServer
from misto.sim.spec import DeviceSpec, SpecTransport, conflicts, endpoint_key
from misto.sim.state_file import DeviceState, state_document, write_atomically

log = logging.getLogger(__name__)

DEFAULT_UPDATE_INTERVAL = 1.0


Server = TcpServer | SerialLineServer


@dataclass(frozen=True, slots=True)
class ServedDevice:
    """A device being served: its spec, its running instance, the port it is bound to (0 on a
    serial line) and its faults."""

    spec: DeviceSpec
    device: SimulatedDevice
    port: int
    faults: FaultState

    @property
    def model(self) -> DeviceModel:
        return self.device.model

    @property
    def host(self) -> str:
        return self.spec.host

    @property
    def unit(self) -> int:
        return self.spec.unit

    @property
    def endpoint(self) -> str:
        """Where it is served: ``127.0.0.1:5020``, ``rtu-tcp:127.0.0.1:5030``, ``pty:/tmp/bus``."""
        if self.spec.path is not None:
            return self.spec.endpoint
        host = f"[{self.host}]" if ":" in self.host else self.host
        prefix = "" if self.spec.transport is SpecTransport.TCP else f"{self.spec.transport}:"
        return f"{prefix}{host}:{self.port}"

    def serving_line(self) -> str:
        return f'serving {self.model.id} "{self.model.title}" on {self.endpoint} unit {self.unit}'


@dataclass(slots=True)
class SimulatorStats:
    """Counters of things that went wrong but did not stop the simulator."""

    updates: int = 0
    update_errors: int = 0
    state_file_errors: int = 0
    late_ticks: int = 0


class Simulator:
    """Serves ``specs`` until closed. Use as an async context manager.

    ``seed`` fixes every device's noise; ``freeze`` computes the values once and holds them;
    otherwise all devices are refreshed together every ``update_interval`` seconds at the
    instant ``clock()`` gives (a device with a ``stuck`` fault keeps its values). ``faults``
    are switched on at the start; :meth:`faults` adds and clears them while serving.
    ``state_file``, if set, is rewritten after every update.
    """

    def __init__(
        self,
        specs: Sequence[DeviceSpec],
        *,
        seed: int = 0,
        freeze: bool = False,
        update_interval: float = DEFAULT_UPDATE_INTERVAL,
        state_file: Path | None = None,
        clock: Clock = system_clock,
        models: Mapping[str, DeviceModel] = MODELS,
        faults: Sequence[FaultSpec] = (),
        baudrate: int = 9600,
    ) -> None:
        if not specs:
            raise ValueError("nothing to serve: no device specs")
        if not update_interval > 0:
            raise ValueError(f"update_interval must be positive, got {update_interval}")
        problems = [
            SpecError(str(s), f"unknown model {s.model!r}; known models: {', '.join(sorted(models))}")
            for s in specs
            if s.model not in models
        ]
        problems += conflicts(specs)
        problems += _fault_problems(specs, faults)
        if problems:
            raise ExceptionGroup("bad device specs", problems)
        self.specs = tuple(specs)
        self.seed = seed
        self.freeze = freeze
        self.update_interval = update_interval
        self.state_file = state_file
        self.clock = clock
        self.stats = SimulatorStats()
        keys = _keys(self.specs)
        self._instances = [
            SimulatedDevice(models[s.model], seed=seed, key=key) for s, key in zip(self.specs, keys, strict=True)
        ]
        self._faults = [
            FaultState(rng=random.Random(f"{seed}/{key}/faults"))  # noqa: S311 - simulated faults
            for key in keys
        ]
        self._initial_faults = tuple(faults)
        self.baudrate = baudrate
        self._servers: list[Server] = []
        self._served: tuple[ServedDevice, ...] = ()
        self._updater: asyncio.Task[None] | None = None
        self._state_file_failing = False

    @property
    def devices(self) -> tuple[ServedDevice, ...]:
        """The served devices, in spec order (empty before :meth:`start`)."""
        return self._served

    def faults(self, index: int) -> FaultState:
        """The faults of the device of ``specs[index]``: ``add`` one, or ``clear`` them."""
        return self._faults[index]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Compute the first values, start listening on every port, write the state file.
        Raises :class:`~misto.sim.errors.ServeError` if a port cannot be bound and
        :class:`~misto.sim.errors.StateFileError` if the state file cannot be written, after
        closing whatever did start."""
        self.update()
        for spec in self._initial_faults:
            self._faults[self._index_of(spec.target)].add(spec.fault)
        try:
            served_port: dict[int, int] = {}
            for indexes in self._groups():
                server = self._server_for(indexes)
                await server.start()
                self._servers.append(server)
                served_port.update((i, server.port if isinstance(server, TcpServer) else 0) for i in indexes)
            self._served = tuple(
                ServedDevice(spec=spec, device=dev, port=served_port[i], faults=self._faults[i])
                for i, (spec, dev) in enumerate(zip(self.specs, self._instances, strict=True))
            )
            if problem := await self._write_state():
                raise StateFileError(str(self.state_file), problem)
        except BaseException:
            await self.close()
            self._served = ()
            raise
        if not self.freeze:
            self._updater = asyncio.create_task(self._update_loop(), name="misto-sim-updater")

    def _index_of(self, target: str) -> int:
        for i, spec in enumerate(self.specs):
            if target in (str(spec), f"{spec.model}@{spec.endpoint}"):
                return i
        raise KeyError(target)  # checked in the constructor

    def _server_for(self, indexes: list[int]) -> Server:
        first = self.specs[indexes[0]]
        rtu = first.transport.is_rtu
        bus = Bus(
            {self.specs[i].unit: (self._instances[i], self._faults[i]) for i in indexes},
            absent=AbsentUnit.SILENCE if rtu else AbsentUnit.GATEWAY_EXCEPTION,
        )
        if first.path is not None:
            return SerialLineServer(
                path=Path(first.path),
                bus=bus,
                create_pty=first.transport is SpecTransport.PTY,
                baudrate=self.baudrate,
            )
        framing = Framing.RTU if rtu else Framing.MBAP
        return TcpServer(host=first.host, port=first.port, bus=bus, framing=framing)

    def _groups(self) -> list[list[int]]:
        """Spec indexes grouped by server: same serial line, or same host and port, share one
        (TCP port 0 always gets its own)."""
        groups: dict[tuple[str, ...] | int, list[int]] = {}
        for i, spec in enumerate(self.specs):
            key: tuple[str, ...] | int = i if spec.port == 0 and spec.path is None else endpoint_key(spec)
            groups.setdefault(key, []).append(i)
        return list(groups.values())

    def update(self) -> None:
        """Refresh every device at one instant of the clock (stuck devices keep their values)."""
        at = self.clock()
        for dev, faults in zip(self._instances, self._faults, strict=True):
            if dev.snapshot is None or not faults.stuck:
                dev.update(at)
        self.stats.updates += 1

    async def _update_loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.update_interval
            now = loop.time()
            if due < now:  # fell behind (a stalled loop): skip the missed ticks, do not burst
                self.stats.late_ticks += 1
                due = now
            await asyncio.sleep(due - now)
            try:
                self.update()
            except Exception:  # a bug in a signal must not stop the servers; it is counted and logged
                self.stats.update_errors += 1
                log.exception("update failed; serving the previous values (counted in stats.update_errors)")
                continue
            await self._refresh_state_file()

    def state(self) -> list[DeviceState]:
        """What the state file holds: every device's decoded values, in spec order."""
        states = []
        for served in self._served:
            snapshot = served.device.snapshot
            assert snapshot is not None  # updated before serving
            states.append(
                DeviceState(
                    served.model.id,
                    served.host,
                    served.port,
                    served.unit,
                    snapshot.values,
                    transport=str(served.spec.transport),
                    path=served.spec.path,
                    faults=dict(served.faults.counts),
                )
            )
        return states

    async def _write_state(self) -> str | None:
        """Rewrite the state file, if there is one; why it failed, or ``None``."""
        if self.state_file is None or not self._served:
            return None
        first = self._served[0].device.snapshot
        assert first is not None
        document = state_document(first.at, self.state())
        try:
            await asyncio.to_thread(write_atomically, self.state_file, document)
        except OSError as exc:
            self.stats.state_file_errors += 1
            return exc.strerror or str(exc)
        return None

    async def _refresh_state_file(self) -> None:
        """Rewrite the state file while serving: a failure is counted and logged when it
        starts and when it ends, and the devices keep being served."""
        problem = await self._write_state()
        if problem and not self._state_file_failing:
            log.error("cannot write state file %s: %s (counted in stats.state_file_errors)", self.state_file, problem)
        elif not problem and self._state_file_failing:
            log.warning("state file %s is being written again", self.state_file)
        self._state_file_failing = problem is not None

    async def close(self) -> None:
        """Stop updating and close every server. Safe to call more than once."""
        updater, self._updater = self._updater, None
        servers, self._servers = self._servers, []
        try:
            if updater is not None:
                updater.cancel()
                try:
                    await updater
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # we are being cancelled ourselves, not just the updater
        finally:
            for server in servers:
                await server.close()


def _fault_problems(specs: Sequence[DeviceSpec], faults: Sequence[FaultSpec]) -> list[SpecError]:
    problems = []
    for spec in faults:
        matching = [s for s in specs if spec.target in (str(s), f"{s.model}@{s.endpoint}")]
        if not matching:
            known = ", ".join(str(s) for s in specs)
            problems.append(
                SpecError(spec.target, f"no --device {spec.target!r} for fault {spec.fault}; devices: {known}")
            )
        elif spec.fault.kind.needs_rtu and not matching[0].transport.is_rtu:
            problems.append(
                SpecError(spec.target, f"a {spec.fault.kind} fault needs an RTU transport (pty, serial, rtu-tcp)")
            )
    return problems


def _keys(specs: Sequence[DeviceSpec]) -> list[str]:
    """A name per device that seeds its noise: the spec, plus ``#2``, ``#3``... for repeats
    (two ``aq1@127.0.0.1:0`` devices must not produce the same values)."""
    seen: Counter[str] = Counter()
    keys = []
    for spec in specs:
        text = str(spec)
        seen[text] += 1
        keys.append(text if seen[text] == 1 else f"{text}#{seen[text]}")
    return keys


async def run_devices(
    specs: Sequence[DeviceSpec],
    *,
    seed: int = 0,
    freeze: bool = False,
    update_interval: float = DEFAULT_UPDATE_INTERVAL,
    state_file: Path | None = None,
    clock: Clock = system_clock,
    on_ready: Callable[[Sequence[ServedDevice]], None] | None = None,
    stop: asyncio.Event | None = None,
    faults: Sequence[FaultSpec] = (),
    baudrate: int = 9600,
) -> None:
    """Serve ``specs`` until ``stop`` is set (or the task is cancelled). ``on_ready`` is called
    once every device is listening."""
    async with Simulator(
        specs,
        seed=seed,
        freeze=freeze,
        update_interval=update_interval,
        state_file=state_file,
        clock=clock,
        faults=faults,
        baudrate=baudrate,
    ) as sim:
        if on_ready is not None:
            on_ready(sim.devices)
        if stop is None:
            await asyncio.Event().wait()
        else:
            await stop.wait()
