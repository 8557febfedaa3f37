"""Gateway health on misto/v1/<gw>/health and the state file behind `misto-edge status`, from a real
agent polling the real simulator through a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from misto.edge.agent import Agent
from misto.edge.cli import app
from misto.edge.health.process import cpu_seconds, rss_bytes
from misto.edge.health.state_file import read_state, write_state
from misto.edge.health.status_view import Liveness, liveness
from misto.edge.settings import settings_from_data
from misto.protocol import Channel, DeviceState, Health, codec, topics
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import LOOPBACK, free_port

DEADLINE = 20.0
runner = CliRunner()


async def until(what: str, condition: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    try:
        async with asyncio.timeout(deadline):
            while not (result := condition()):  # noqa: ASYNC110 - set by other threads and processes
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None
    return result


def config(broker: BrokerInfo, gateway: str, password: str, sim: Any, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "gateway_id": gateway,
        "state_dir": str(tmp_path / "state"),
        "state_interval": 0.2,
        "health_interval": 0.5,
        "broker": {"url": broker.url, "username": gateway, "password": password,
                   "reconnect_delay_min": 0.1, "reconnect_delay_max": 0.5},
        "poll_interval": 0.2,
        "devices": [
            {"id": "nm-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": sim.ports["nm1"], "profile": "nm1",
             "timeout": 0.5, "retries": 0},
            {"id": "dead-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": free_port(), "profile": "aq1",
             "timeout": 0.5, "retries": 0},
        ],
        **extra,
    }  # fmt: skip


def test_process_figures() -> None:
    assert cpu_seconds() > 0
    rss = rss_bytes()
    assert rss is not None
    assert 5_000_000 < rss < 2_000_000_000


async def test_health_is_published_and_the_state_file_shows_the_agent(
    mosquitto: BrokerInfo, start_sim: Any, subscribe: Any, tmp_path: Path
) -> None:
    gateway = "gw-health"
    password = mosquitto.add_gateway(gateway)
    sim = start_sim("nm1")
    topic = topics.build(gateway, Channel.HEALTH)
    watcher = subscribe(topic)
    settings = settings_from_data(config(mosquitto, gateway, password, sim, tmp_path), env={})
    agent = Agent(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:

        def healthy() -> Health | None:
            for received in reversed(watcher.on(topic)):
                health = codec.decode(received.payload, Health, topic=topic)
                devices = {d.device: d for d in health.devices}
                if devices["nm-1"].polls >= 3 and devices["dead-1"].failures >= 1 and health.buffer.sent >= 2:
                    return health
            return None

        health = await until("a health message with polls, failures and sent telemetry", healthy)
        assert (health.gateway, health.boot) == (gateway, agent.boot)
        assert health.link.connected
        assert health.link.connects == 1
        assert health.buffer.kind == "sqlite"
        assert health.cpu_s > 0
        assert health.rss_bytes
        devices = {d.device: d for d in health.devices}
        good, dead = devices["nm-1"], devices["dead-1"]
        assert good.state is DeviceState.AVAILABLE
        assert good.failures == 0
        assert good.readings == 3 * good.polls
        assert good.last_latency_ms is not None
        assert 0 < good.last_latency_ms < 1000
        assert good.last_success_at is not None
        assert dead.state is DeviceState.UNAVAILABLE
        assert dead.last_error == "connection"
        assert dead.errors == {"connection": dead.failures}
        assert health.errors["connection"] == dead.failures
        assert health.uptime_s > 0

        state_path = settings.state_file_path
        assert state_path == tmp_path / "state" / "state.json"
        state = await until("the state file", lambda: state_path.exists() and read_state(state_path))
        assert liveness(state, datetime.now(UTC)) is Liveness.RUNNING
        assert {d.id: set(d.values) for d in state.devices} == {
            "nm-1": {"LAeq", "LAmax", "temperature"},
            "dead-1": set(),
        }
        assert state.devices[0].values["LAeq"].value == pytest.approx(sim.values("nm1")["LAeq"], rel=1e-6)

        shown = runner.invoke(app, ["status", "--state-file", str(state_path)])
        assert shown.exit_code == 0, shown.output
        assert f"gateway  {gateway}: running" in shown.output
        assert f"{mosquitto.url}: connected" in shown.output
        assert "nm-1    available" in shown.output
        assert "dead-1  unavailable" in shown.output
        assert "LAeq" in shown.output
        as_json = runner.invoke(app, ["status", "--json", "--state-file", str(state_path)])
        assert json.loads(as_json.output)["liveness"] == "running"
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE):
            await task
    final = read_state(settings.state_file_path)
    assert final.stopped
    stopped = runner.invoke(app, ["status", "--state-file", str(settings.state_file_path)])
    assert stopped.exit_code == 1
    assert f"gateway  {gateway}: stopped" in stopped.output


async def test_health_waits_for_the_link(mosquitto: BrokerInfo, start_sim: Any, subscribe: Any, tmp_path: Path) -> None:
    """Best effort: nothing is queued while the broker is away; the first health after the reconnect
    shows the backlog and the reconnect."""
    gateway = "gw-health-2"
    password = mosquitto.add_gateway(gateway)
    sim = start_sim("nm1")
    topic = topics.build(gateway, Channel.HEALTH)
    watcher = subscribe(topic, persistent=True)
    data = config(mosquitto, gateway, password, sim, tmp_path, health_interval=0.3)
    data["devices"] = data["devices"][:1]
    agent = Agent(settings_from_data(data, env={}))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await until("a first health message", lambda: watcher.on(topic))
        mosquitto.stop()
        await until("the link to drop", lambda: not agent.uplink.connected)
        await until("a backlog", lambda: agent.buffer.depth() >= 5)
        published = agent.reporter.published
        await asyncio.sleep(1.0)  # three health intervals without a broker
        assert agent.reporter.published == published
        mosquitto.start()

        def after_reconnect() -> Health | None:
            for received in watcher.on(topic):
                health = codec.decode(received.payload, Health)
                if health.link.connects == 2:
                    return health
            return None

        health = await until("health after the reconnect", after_reconnect)
        assert health.link.disconnects == 1
        assert health.buffer.depth + health.buffer.sent >= 5
    finally:
        stop.set()
        async with asyncio.timeout(DEADLINE):
            await task


def test_status_without_a_state_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--state-file", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "does not exist: is the agent running" in result.output


def test_status_finds_the_state_file_through_the_config(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("gateway_id: gw-x\nstate_dir: run\n", encoding="utf-8")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "state.json").write_text("{not json", encoding="utf-8")
    result = runner.invoke(app, ["status", str(tmp_path / "gateway.yaml")])
    assert result.exit_code == 1
    assert f"{tmp_path / 'run' / 'state.json'} is not a state file" in result.output


async def test_stale_and_dead_agents_are_recognised(mosquitto: BrokerInfo, start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim("nm1")
    settings = settings_from_data(config(mosquitto, "gw-test", mosquitto.users["gw-test"], sim, tmp_path), env={})
    agent = Agent(settings)
    state = agent.reporter.state()
    now = datetime.now(UTC)
    assert liveness(state, now) is Liveness.RUNNING
    assert liveness(state, now + timedelta(seconds=10)) is Liveness.STALE
    path = tmp_path / "state.json"
    gone = state.__class__(**{**{f: getattr(state, f) for f in state.__struct_fields__}, "pid": 2**22 + 7})
    write_state(path, gone)
    assert not os.path.exists(f"/proc/{gone.pid}")  # noqa: ASYNC240 - no such process
    result = runner.invoke(app, ["status", "--state-file", str(path)])
    assert result.exit_code == 1
    assert "gw-test: not running" in result.output


class _Counting:
    """A driver's optional ability to report its own counters (see ``CountingDriver``)."""

    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters

    def health_counters(self) -> dict[str, int]:
        return self.counters


def test_driver_counters_are_reported_when_a_driver_has_them(caplog: pytest.LogCaptureFixture) -> None:
    from misto.edge.health.snapshot import driver_counters

    assert driver_counters(object()) == {}
    assert driver_counters(_Counting({"requests": 18, "crc_errors": 11, "exception_2": 1})) == {
        "requests": 18,
        "crc_errors": 11,
        "exception_2": 1,
    }
    assert driver_counters(_Counting({"CRC errors": 3, "retries": -1, "timeouts": 2})) == {"timeouts": 2}
    assert "counters health cannot carry" in caplog.text
