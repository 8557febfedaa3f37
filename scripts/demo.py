"""Run the whole Misto chain on this machine: simulators, gateway agent, broker, ingester, store,
API and web page, each in its own process, with fresh credentials. Ctrl-C stops everything.

Started by ``scripts/demo`` (which sets up .venv first). ``--until-live`` exits 0 as soon as every
simulated device has readings at the API (used by the test of this very command).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GATEWAY_ID = "gw-demo-001"
INGESTER_USER = "misto-ingester"
DEVICES = (("aq-center-1", "aq1", 5020), ("nm-port-1", "nm1", 5021))
DEVICE_PLACES = ((32.6169, 46.6354), (32.6010, 46.6300))  # lon, lat in Kherson (synthetic)
COLOURS = {"cloud": "34", "sim": "33", "edge": "32", "demo": "1"}


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(preferred: int, taken: set[int]) -> int:
    if preferred not in taken and port_free(preferred):
        taken.add(preferred)
        return preferred
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def say(message: str) -> None:
    print(f"\033[{COLOURS['demo']}m[demo]\033[0m {message}", flush=True)


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    pump: threading.Thread


@dataclass
class Demo:
    run_dir: Path
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> Child:
        popen = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.run_dir, start_new_session=True
        )
        assert popen.stdout is not None
        pump = threading.Thread(target=self._pump, args=(name, popen.stdout), name=f"pump-{name}", daemon=True)
        pump.start()
        child = Child(name, popen, pump)
        self.children.append(child)
        return child

    @staticmethod
    def _pump(name: str, stream: IO[bytes]) -> None:
        colour = COLOURS.get(name, "0")
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip()
            print(f"\033[{colour}m[{name}]\033[0m {line}", flush=True)

    def check_alive(self) -> None:
        for child in self.children:
            code = child.popen.poll()
            if code is not None:
                raise SystemExit(f"demo: {child.name} exited with status {code}; see its lines above")

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.popen.poll() is None:
                child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in reversed(self.children):
            try:
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{child.name} did not stop within 15 s; killing it")
                child.popen.kill()
                child.popen.wait()
            child.pump.join(timeout=2)


def write_secret(path: Path, value: str) -> Path:
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own loopback API
        return json.load(response)


def wait_for(what: str, check: Any, demo: Demo, deadline_s: float) -> Any:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        demo.check_alive()
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            result = check()
            if result:
                return result
        time.sleep(0.2)
    raise SystemExit(f"demo: {what} did not happen within {deadline_s:.0f} s")


def live_devices(api: str) -> set[str]:
    devices = get_json(f"{api}/api/v1/devices")
    return {d["device"] for d in devices if d.get("readings")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    parser.add_argument("--broker", help="use this MQTT broker (mqtt://host:port) instead of the embedded one")
    parser.add_argument("--username", help="with --broker: the account the agent and the ingester use")
    parser.add_argument("--password-file", type=Path, help="with --broker: file holding that account's password")
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--run-dir", type=Path, default=ROOT / ".run" / "demo")
    parser.add_argument("--poll-interval", default="2s")
    parser.add_argument("--until-live", action="store_true", help="exit 0 once every device has readings at the API")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds to wait for live readings")
    args = parser.parse_args(argv)
    if (args.username is None) != (args.password_file is None):
        parser.error("--username and --password-file go together")
    if args.username and not args.broker:
        parser.error("--username and --password-file are for --broker")
    return args


@dataclass(frozen=True)
class Plan:
    api: str
    broker_url: str
    sim_ports: dict[str, int]


def write_configs(args: argparse.Namespace, run_dir: Path) -> Plan:
    """Write cloud.yaml, gateway.yaml and fresh secrets into ``run_dir``."""
    taken: set[int] = set()
    api_port = pick_port(args.api_port, taken)
    sim_ports = {model: pick_port(port, taken) for _, model, port in DEVICES}
    embedded: dict[str, Any] = {"enabled": False}
    if args.broker:
        broker_url, protocol = args.broker, "5"
        edge_user = ingest_user = args.username
        edge_pw = ingest_pw = args.password_file.resolve() if args.password_file else None
    else:
        broker_port = pick_port(1883, taken)
        broker_url, protocol = f"mqtt://127.0.0.1:{broker_port}", "3.1.1"  # the embedded broker speaks 3.1.1
        edge_user, ingest_user = GATEWAY_ID, INGESTER_USER
        edge_pw = write_secret(run_dir / "gateway.password", secrets.token_urlsafe(24))
        ingest_pw = write_secret(run_dir / "ingester.password", secrets.token_urlsafe(24))
        embedded = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": broker_port,
            "users": [
                {"username": INGESTER_USER, "password_file": str(ingest_pw), "role": "ingester"},
                {"username": GATEWAY_ID, "password_file": str(edge_pw), "role": "gateway"},
            ],
        }
    operator_token = write_secret(run_dir / "operator.token", secrets.token_urlsafe(24))
    broker: dict[str, Any] = {"url": broker_url, "protocol": protocol}
    edge_broker: dict[str, Any] = {"url": broker_url, "protocol": protocol}
    if ingest_user:
        broker |= {"username": ingest_user, "password_file": str(ingest_pw)}
        edge_broker |= {"username": edge_user, "password_file": str(edge_pw)}
    cloud = {
        "broker": broker,
        "store": {"path": str(run_dir / "misto.db")},
        "api": {"host": "127.0.0.1", "port": api_port, "operator_token_file": str(operator_token)},
        "embedded_broker": embedded,
    }
    edge = {
        "gateway_id": GATEWAY_ID,
        "state_dir": str(run_dir / "edge-state"),
        "broker": edge_broker,
        "poll_interval": args.poll_interval,
        "devices": [
            {"id": dev, "driver": "modbus_tcp", "host": "127.0.0.1", "port": sim_ports[model], "profile": model}
            for dev, model, _ in DEVICES
        ],
    }
    (run_dir / "cloud.yaml").write_text(yaml.safe_dump(cloud, sort_keys=False), encoding="utf-8")
    (run_dir / "gateway.yaml").write_text(yaml.safe_dump(edge, sort_keys=False), encoding="utf-8")
    return Plan(api=f"http://127.0.0.1:{api_port}", broker_url=broker_url, sim_ports=sim_ports)


def register_demo(run_dir: Path) -> None:
    """The demo's gateway and devices in the registry, public and placed in Kherson, so the public
    map shows them (models from docs/samples; the CSVs are the format of `misto-cloud registry`)."""
    gateways = run_dir / "registry-gateways.csv"
    gateways.write_text(
        "id,name,lon,lat,district,organisation,visibility,status\n"
        f"{GATEWAY_ID},Demo gateway,32.6165,46.6360,Tsentralnyi,Misto demo,public,active\n",
        encoding="utf-8",
    )
    devices = run_dir / "registry-devices.csv"
    rows = "".join(
        f"{device},{GATEWAY_ID},{model},{lon},{lat},Tsentralnyi,Misto demo,public,active\n"
        for (device, model, _), (lon, lat) in zip(DEVICES, DEVICE_PLACES, strict=True)
    )
    devices.write_text(
        "id,gateway_id,model_id,lon,lat,district,organisation,visibility,status\n" + rows, encoding="utf-8"
    )
    config = ["--config", str(run_dir / "cloud.yaml"), "--actor", "demo"]
    for entity, path in (
        ("device-models", ROOT / "docs" / "samples" / "registry-device-models.csv"),
        ("gateways", gateways),
        ("devices", devices),
    ):
        argv = [str(BIN / "misto-cloud"), "registry", "import", str(path), "--entity", entity, *config]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=60)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(demo: Demo, plan: Plan, args: argparse.Namespace) -> int:
    run_dir, api = demo.run_dir, plan.api
    # The map's base: the synthetic Kherson layers (districts, streets, parcels, networks) in the registry.
    load = [str(BIN / "misto-cloud"), "layers", "load-sample", "--config", str(run_dir / "cloud.yaml")]
    subprocess.run(load, check=True, stdout=subprocess.DEVNULL, timeout=60)
    register_demo(run_dir)
    demo.start("cloud", [str(BIN / "misto-cloud"), "serve", "--config", str(run_dir / "cloud.yaml")])
    wait_for("the API to answer", lambda: get_json(f"{api}/health"), demo, 30)
    sim_argv = [str(BIN / "misto-sim"), "serve"]
    for _, model, _ in DEVICES:
        sim_argv += ["--device", f"{model}@127.0.0.1:{plan.sim_ports[model]}"]
    demo.start("sim", sim_argv)
    demo.start("edge", [str(BIN / "misto-edge"), "run", str(run_dir / "gateway.yaml")])
    wanted = {dev for dev, _, _ in DEVICES}
    started = time.monotonic()
    wait_for("live readings from every device", lambda: live_devices(api) >= wanted, demo, args.deadline)
    say(f"live readings from {len(wanted)} devices after {time.monotonic() - started:.1f} s")
    say(f"web page      {api}/")
    say(f"API docs      {api}/docs")
    say(f"devices       {api}/api/v1/devices")
    say(f"map layers    {api}/api/v1/layers  (Kherson sample base, synthetic)")
    say(f"registry      {api}/api/v1/registry/devices  (the demo's gateway and devices, public)")
    say(f"broker        {plan.broker_url}  (configs and secrets in {run_dir})")
    if args.until_live:
        return 0
    say("running; Ctrl-C stops everything")
    while True:
        demo.check_alive()
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    run_dir.chmod(0o700)
    plan = write_configs(args, run_dir)
    demo = Demo(run_dir)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(demo, plan, args)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        demo.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
