"""``misto-edge status`` as text: the agent's state file rendered as a few lines and two tables."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from misto.edge.health.state_file import AgentState, DeviceInfo
from misto.protocol import DeviceHealth

STALE_AFTER = 3.0
"""The state file is stale when it has not been rewritten for this many of its intervals (plus 2 s)."""


class Liveness(StrEnum):
    RUNNING = "running"
    STALE = "not responding"
    STOPPED = "stopped"
    GONE = "not running"


def liveness(state: AgentState, now: datetime) -> Liveness:
    if state.stopped:
        return Liveness.STOPPED
    if not _alive(state.pid):
        return Liveness.GONE
    age = (now - state.written_at).total_seconds()
    return Liveness.STALE if age > STALE_AFTER * state.interval_s + 2 else Liveness.RUNNING


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user (the agent's)
        return True
    return True


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def duration(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes}m"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {int(seconds) % 60}s"


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)]  # fmt: skip


def _device_row(device: DeviceInfo, health: DeviceHealth | None, now: datetime) -> list[str]:
    if health is None:
        return [device.id, "?", "", "", "", "", ""]
    latency = "" if health.last_latency_ms is None else f"{health.last_latency_ms:.1f} ms"
    error = ""
    if health.last_error and health.last_error_at:
        error = f"{health.last_error} {ago((now - health.last_error_at).total_seconds())}"
    last = "" if health.last_success_at is None else ago((now - health.last_success_at).total_seconds())
    return [device.id, health.state.value, str(health.polls), str(health.failures), latency, error, last]


def render(state: AgentState, now: datetime) -> str:
    health = state.health
    alive = liveness(state, now)
    written = ago((now - state.written_at).total_seconds())
    rss = "?" if health.rss_bytes is None else size(health.rss_bytes)
    link = health.link
    buffer = health.buffer
    lines = [
        f"gateway  {health.gateway}: {alive.value} (pid {state.pid}, boot {health.boot}, agent {health.agent_version})",
        f"state    written {written} (every {state.interval_s:g} s); up {duration(health.uptime_s)}; "
        f"CPU {health.cpu_s:.1f} s; RSS {rss}",
        f"broker   {state.broker_url}: {'connected' if link.connected else 'NOT CONNECTED'} "
        f"({link.connects} connect(s), {link.disconnects} disconnect(s), {link.connect_failures} failed attempt(s))",
        f"buffer   {buffer.kind}{' ' + state.buffer_path if state.buffer_path else ''}: {buffer.depth} waiting "
        f"({size(buffer.bytes)}"
        + ("" if buffer.oldest_age_s is None else f", oldest {ago(buffer.oldest_age_s)}")
        + f"); {buffer.sent} sent, {buffer.dropped} dropped ({buffer.dropped_readings} readings), "
        f"{buffer.rejected} rejected, {buffer.recovered} recovered at start",
    ]
    if health.errors:
        lines.append("errors   " + ", ".join(f"{kind} {count}" for kind, count in sorted(health.errors.items())))
    by_id = {d.device: d for d in health.devices}
    lines.append("")
    lines += table(
        ["DEVICE", "STATE", "POLLS", "FAILED", "LATENCY", "LAST ERROR", "LAST READ"],
        [_device_row(d, by_id.get(d.id), now) for d in state.devices],
    )
    values = [
        [device.id, metric, f"{value.value:g}", value.unit, ago((now - value.ts).total_seconds())]
        for device in state.devices
        for metric, value in sorted(device.values.items())
    ]
    if values:
        lines.append("")
        lines += table(["DEVICE", "METRIC", "VALUE", "UNIT", "READ"], values)
    return "\n".join(lines)
