"""Remote configuration and commands end to end: cloud API -> retained config / commands over
Mosquitto -> the running agent -> Acks back to the cloud; polling never stops."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.chain import Chain, Cloud
from tests.fixtures.mosquitto import BrokerInfo
from tests.fixtures.net import LOOPBACK, wait_until

pytestmark = pytest.mark.e2e
DEADLINE = 20.0


def _latest(cloud: Cloud) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["device"], r["metric"]): r for r in cloud.get("/api/v1/readings/latest")}


def _config_state(cloud: Cloud, version: int) -> dict[str, Any] | None:
    state: dict[str, Any] = cloud.get("/api/v1/gateways/gw-test/config", auth=True)
    ack = state.get("last_ack") or {}
    return state if ack.get("version") == version else None


def _command(cloud: Cloud, action: str, args: dict[str, Any]) -> dict[str, Any]:
    status, body = cloud.send("POST", "/api/v1/gateways/gw-test/commands", {"action": action, "args": args})
    assert status == 202, body
    command_id = body["id"]

    def answered() -> dict[str, Any] | None:
        item: dict[str, Any] = cloud.get(f"/api/v1/gateways/gw-test/commands/{command_id}", auth=True)
        return item if item["state"] in ("ok", "error") else None

    return wait_until(answered, deadline_s=DEADLINE, what=f"the ack of {action}")


def test_remote_config_and_commands(chain: Chain, mosquitto: BrokerInfo, tmp_path: Path) -> None:
    sim = chain.simulator({"aq-1": "aq1", "nm-1": "nm1", "tb-1": "tb1"})
    ports = {d.device_id: d.port for d in sim.devices}
    aq = {"id": "aq-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": ports["aq-1"], "profile": "aq1"}
    nm = {"id": "nm-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": ports["nm-1"], "profile": "nm1"}
    tb = {
        "id": "tb-1", "driver": "modbus_tcp", "host": LOOPBACK, "port": ports["tb-1"],
        "registers": [{"metric": "temperature", "table": "holding", "address": 0, "type": "float32"}],
    }  # fmt: skip
    cloud = chain.cloud()
    agent = chain.agent(sim, poll_interval="0.5s", extra={"devices": [aq, tb]})
    wait_until(lambda: ("aq-1", "pm25") in _latest(cloud), deadline_s=DEADLINE, what="first aq-1 readings")

    # 1. A new config adds nm-1 and leaves aq-1 and tb-1 running.
    status, body = cloud.send("PUT", "/api/v1/gateways/gw-test/config", {"config": {"devices": [aq, tb, nm]}})
    assert status == 202, body
    state = wait_until(lambda: _config_state(cloud, 1), deadline_s=DEADLINE, what="config 1 acknowledged")
    assert state["last_ack"]["result"] == "ok", state
    assert state["last_ack"]["detail"] == "1 added"
    wait_until(lambda: ("nm-1", "LAeq") in _latest(cloud), deadline_s=DEADLINE, what="readings of the added device")

    # 2. A config that cannot work is refused with the reason; polling goes on.
    broken = {**nm, "profile": "nm9"}
    status, _ = cloud.send("PUT", "/api/v1/gateways/gw-test/config", {"config": {"devices": [aq, tb, broken]}})
    assert status == 202
    state = wait_until(lambda: _config_state(cloud, 2), deadline_s=DEADLINE, what="config 2 acknowledged")
    assert state["last_ack"]["result"] == "error"
    assert "unknown profile 'nm9'" in state["last_ack"]["detail"]
    before = _latest(cloud)[("nm-1", "LAeq")]["ts"]
    wait_until(lambda: _latest(cloud)[("nm-1", "LAeq")]["ts"] > before, deadline_s=DEADLINE, what="polling goes on")

    # 3. Commands: write a set point (float32, by address), poll at once, restart a driver.
    write = _command(cloud, "write", {"device": "tb-1", "table": "holding", "address": 0, "type": "float32",
                                      "value": 30.5})  # fmt: skip
    assert write["state"] == "ok", write
    poll = _command(cloud, "poll_now", {"device": "tb-1"})
    assert poll["state"] == "ok"
    assert poll["ack"]["detail"] == "polled 1 device(s)"
    wait_until(
        lambda: math.isclose(_latest(cloud).get(("tb-1", "temperature"), {}).get("value", 0), 30.5),
        deadline_s=DEADLINE, what="the written set point read back",
    )  # fmt: skip
    bad = _command(cloud, "write", {"device": "aq-1", "metric": "pm25", "value": 1})
    assert bad["state"] == "error"
    assert "read-only" in bad["ack"]["detail"]
    restart = _command(cloud, "restart_driver", {"device": "aq-1"})
    assert restart["state"] == "ok"
    unknown = _command(cloud, "poll_now", {"device": "nope"})
    assert unknown["state"] == "error"
    assert "no device 'nope'" in unknown["ack"]["detail"]

    # 4. After a restart the agent comes back with the last good remote config (version 1).
    assert agent.stop() == 0
    again = chain.agent(sim, poll_interval="0.5s", extra={"devices": [aq, tb]})
    wait_until(lambda: "using remote config version 1" in again.log_text(), deadline_s=DEADLINE, what="last good")
    before = _latest(cloud)[("nm-1", "LAeq")]["ts"]
    wait_until(lambda: _latest(cloud)[("nm-1", "LAeq")]["ts"] > before, deadline_s=DEADLINE, what="nm-1 after restart")
