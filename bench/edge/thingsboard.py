"""The peer: ThingsBoard IoT Gateway 3.8.5 from PyPI, in its own virtualenv, with its Modbus
connector pointed at the same simulators.

Install (once, cached): ``python3 -m venv .run/bench/thingsboard-venv``, then ``pip install
pymodbus==3.9.2 pyserial pyserial-asyncio`` (its Modbus connector pip-installs these when it is
first imported, at run time, unless they are there) and ``pip install thingsboard-gateway==3.8.5``.

Its configuration is ``thingsboard/tb_gateway.json`` (the shipped sample with the broker, username
and password, remote configuration, remote shell and statistics off) and ``thingsboard/logs.json``
(the shipped logging config, unchanged), plus a generated ``modbus.json`` connector config in the
shipped ``master.slaves[]`` format. It publishes ``{"<device>": [{"ts": <ms>, "values": {...}}]}``
to ``v1/gateway/telemetry`` (``tb_gateway_mqtt.TBGatewayMqttClient.gw_send_telemetry``); ``ts`` is
stamped by its Modbus uplink converter when it converts a batch of reads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.edge.capture import Arrival
from bench.edge.model import Device, Point, Sample

VERSION = "3.8.5"
PYMODBUS = "3.9.2"
RECIPE = 2  # bump when the install steps change, so cached virtualenvs are completed
TOPIC = "v1/gateway/telemetry"
TEMPLATES = Path(__file__).resolve().parent / "thingsboard"
INSTALL_TIMEOUT_S = 900.0

_TB_TYPES = {"uint16": "16uint", "int16": "16int", "uint32": "32uint", "int32": "32int", "float32": "32float"}


class PeerUnavailable(RuntimeError):
    """The peer cannot be installed or run here; the message says why."""


def ensure_installed(venv: Path, *, log_path: Path) -> Path:
    """The gateway's console script, installing it into ``venv`` first if needed."""
    script = venv / "bin" / "thingsboard-gateway"
    marker = venv / f".installed-thingsboard-gateway-{VERSION}-r{RECIPE}"
    if marker.exists() and script.exists():
        return script
    python3 = shutil.which("python3")
    if python3 is None:
        raise PeerUnavailable("python3 is not on PATH (needed to create the peer's virtualenv)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [python3, "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "pip"),
            "install",
            "--disable-pip-version-check",
            f"pymodbus=={PYMODBUS}",
            "pyserial",
            "pyserial-asyncio",
        ],
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", f"thingsboard-gateway=={VERSION}"],
    ]
    print(f"installing ThingsBoard IoT Gateway {VERSION} into {venv} (once; log: {log_path})", flush=True)
    with log_path.open("ab") as log:
        for argv in steps:
            try:
                done = subprocess.run(
                    argv, stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S, check=False
                )
            except subprocess.TimeoutExpired:
                raise PeerUnavailable(
                    f"`{' '.join(argv)}` took over {INSTALL_TIMEOUT_S:g}s (log: {log_path})"
                ) from None
            if done.returncode != 0:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-5:])
                raise PeerUnavailable(f"`{' '.join(argv)}` exited with {done.returncode}:\n{tail}")
    if not script.exists():
        raise PeerUnavailable(f"installed, but {script} does not exist")
    marker.touch()
    return script


def _timeseries(point: Point) -> dict[str, object]:
    entry: dict[str, object] = {
        "tag": point.metric,
        "type": _TB_TYPES[point.type],
        "functionCode": point.function,
        "objectsCount": point.words,
        "address": point.address,
    }
    inverse = 1 / point.scale
    if point.scale != 1 and abs(inverse - round(inverse)) < 1e-9:
        entry["divider"] = round(inverse)
    elif point.scale != 1:
        entry["multiplier"] = point.scale
    return entry


def word_order_mismatches(points: Sequence[Point]) -> list[str]:
    """Metrics whose word order differs from the device's (ThingsBoard has one word order per device)."""
    return [p.metric for p in points if p.words > 1 and p.word_order != "big"]


def write_config(
    config_dir: Path,
    *,
    broker_port: int,
    username: str,
    password: str,
    devices: Sequence[Device],
    points: Sequence[Point],
    interval: float,
) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    main = json.loads((TEMPLATES / "tb_gateway.json").read_text(encoding="utf-8"))
    main["thingsboard"].update(host="127.0.0.1", port=broker_port)
    main["thingsboard"]["security"].update(clientId=username, username=username, password=password)
    (config_dir / "tb_gateway.json").write_text(json.dumps(main, indent=2), encoding="utf-8")
    shutil.copy(TEMPLATES / "logs.json", config_dir / "logs.json")
    slaves = [
        {
            "host": "127.0.0.1",
            "port": d.port,
            "type": "tcp",
            "method": "socket",
            "unitId": 1,
            "deviceName": d.device_id,
            "deviceType": "default",
            "timeout": 3,
            "byteOrder": "BIG",
            "wordOrder": "BIG",  # one per device: a little-endian-word register is decoded wrongly (see README)
            "retries": 2,
            "retryOnEmpty": True,
            "retryOnInvalid": True,
            "pollPeriod": round(interval * 1000),
            "connectAttemptTimeMs": 5000,
            "connectAttemptCount": 5,
            "waitAfterFailedAttemptsMs": 300000,
            "attributes": [],
            "timeseries": [_timeseries(p) for p in points],
            "attributeUpdates": [],
            "rpc": [],
        }
        for d in devices
    ]
    (config_dir / "modbus.json").write_text(json.dumps({"master": {"slaves": slaves}}, indent=2), encoding="utf-8")


def environment(config_dir: Path) -> dict[str, str]:
    """A clean environment: it reads ``host``, ``port``, ``username``, ``password``... from the
    environment as overrides, and its update check goes through an HTTP(S) proxy on a closed
    loopback port, so it fails at once and nothing leaves the machine."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") if k in os.environ}
    env.update(
        TB_GW_CONFIG_DIR=str(config_dir),
        PYTHONUNBUFFERED="1",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def decode(arrival: Arrival) -> list[Sample]:
    """The data points of one ``v1/gateway/telemetry`` message; raises ``ValueError`` if malformed."""
    document = json.loads(arrival.payload)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    samples: list[Sample] = []
    for device, entries in document.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            ts = entry["ts"] / 1000.0
            samples.extend(Sample(device, key, ts) for key in entry["values"])
    return samples
