"""The technician's Modbus tools: ``misto-edge scan`` (who answers on this bus?) and
``misto-edge read CONFIG DEVICE`` (what does this device say right now, decoded and raw?).
Registered in ``cli.py``. Both print plain tables for people and ``--json`` for scripts.

Exit codes: ``scan`` 0 when at least one device answered, 1 when none did or the bus cannot be
opened, 2 for bad arguments; ``read`` 0 when every value was read, 1 when some were not,
2 for an invalid configuration or an unknown device.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from misto.edge.errors import ConfigError, EdgeError

if TYPE_CHECKING:
    from misto.edge.drivers.modbus.driver import ReadoutRow
    from misto.edge.drivers.modbus.operations import Read
    from misto.edge.drivers.modbus.scan import Probe

EXIT_USAGE = 2
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]


def _quiet_libraries() -> None:
    """Nothing from pymodbus (it logs every skipped frame at ERROR): the commands report outcomes themselves."""
    from misto.edge.logs import LIBRARY_LOGGERS

    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _usage(message: str) -> typer.Exit:
    typer.echo(f"misto-edge: error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _probe_op(text: str) -> Read:
    from misto.edge.drivers.modbus.operations import Read
    from misto.edge.registers.spec import Table

    table, _, address = text.partition(":")
    try:
        return Read(Table(table), int(address), 1)
    except ValueError:
        tables = ", ".join(t.value for t in Table)
        raise _usage(f"--register {text!r}: expected TABLE:ADDRESS with TABLE one of {tables}") from None


def scan(  # noqa: PLR0917 - typer maps parameters to options
    serial: Annotated[
        str | None, typer.Option("--serial", metavar="PORT", help="Serial port, e.g. /dev/ttyUSB0.")
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Modbus TCP device or gateway, or serial converter.")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 502,
    rtu_over_tcp: Annotated[bool, typer.Option("--rtu-over-tcp", help="RTU frames over TCP (a converter).")] = False,
    baudrate: Annotated[int, typer.Option(help="Serial line speed.")] = 9600,
    parity: Annotated[str, typer.Option(help="N, E or O.")] = "N",
    bytesize: Annotated[int, typer.Option(help="7 or 8.")] = 8,
    stopbits: Annotated[int, typer.Option(help="1 or 2.")] = 1,
    units: Annotated[str, typer.Option("--units", help="Unit ids to try: 1-247, 5, 1,2,10-20.")] = "1-247",
    timeout: Annotated[float, typer.Option(min=0.01, help="Seconds to wait for each unit.")] = 0.2,
    register: Annotated[
        str, typer.Option("--register", metavar="TABLE:ADDRESS", help="What to read from each unit.")
    ] = "holding:0",
    as_json: JsonOption = False,
) -> None:
    """Probe a serial bus or a TCP host for the unit ids that answer, with progress."""
    from misto.edge.drivers.modbus.client import RequestFailed, SerialPort, TcpPort
    from misto.edge.drivers.modbus.scan import parse_units
    from misto.edge.drivers.modbus.scan import scan as run_scan

    if (serial is None) == (host is None):
        raise _usage("give either --serial PORT or --host HOST")
    _quiet_libraries()
    try:
        unit_ids = parse_units(units)
    except ValueError as exc:
        raise _usage(f"--units {units!r}: {exc}") from None
    if parity not in ("N", "E", "O") or bytesize not in (7, 8) or stopbits not in (1, 2):
        raise _usage("--parity N|E|O, --bytesize 7|8, --stopbits 1|2")
    probe = _probe_op(register)
    endpoint = (
        SerialPort(serial, baudrate, bytesize, parity, stopbits)
        if serial is not None
        else TcpPort(host or "", port, rtu=rtu_over_tcp)
    )
    progress = _Progress(len(unit_ids), probe=probe, quiet=as_json)
    if not as_json:
        typer.echo(
            f"scanning {endpoint.where}: units {units}, reading {probe.table} {probe.address}, {timeout:g} s per unit"
        )
    started = time.monotonic()
    try:
        results = asyncio.run(run_scan(endpoint, unit_ids, probe=probe, per_unit_s=timeout, on_probe=progress))
    except RequestFailed as failed:
        progress.done()
        typer.echo(f"misto-edge scan: {failed.detail}", err=True)
        raise typer.Exit(1) from None
    progress.done()
    found = [r for r in results if r.present]
    if as_json:
        typer.echo(json.dumps(_scan_json(endpoint.where, probe, results), indent=2))
    else:
        elapsed = time.monotonic() - started
        typer.echo(f"found {len(found)} device(s) among {len(results)} unit id(s) in {elapsed:.1f} s")
    raise typer.Exit(0 if found else 1)


class _Progress:
    """One line per answering unit on stdout; a progress counter on stderr (redrawn on a terminal)."""

    def __init__(self, total: int, *, probe: Read, quiet: bool) -> None:
        self.total = total
        self.probe = probe
        self.quiet = quiet
        self.seen = 0
        self.found = 0
        self.tty = sys.stderr.isatty()

    def __call__(self, probe: Probe) -> None:
        self.seen += 1
        if probe.present:
            self.found += 1
        if self.quiet:
            return
        if probe.answer.value != "silent":
            self._clear()
            latency = f"  {probe.latency_s * 1000:.0f} ms" if probe.latency_s is not None else ""
            typer.echo(f"unit {probe.unit:>3}  {probe.describe(self.probe)}{latency}")
        step = max(self.total // 10, 1)
        if self.tty:
            typer.echo(f"\r  {self.seen}/{self.total} unit ids tried, {self.found} answered", nl=False, err=True)
        elif self.seen % step == 0 or self.seen == self.total:
            typer.echo(f"  {self.seen}/{self.total} unit ids tried, {self.found} answered", err=True)

    def _clear(self) -> None:
        if self.tty and self.seen > 1:
            typer.echo("\r\x1b[K", nl=False, err=True)

    def done(self) -> None:
        if self.tty and not self.quiet:
            typer.echo("\r\x1b[K", nl=False, err=True)


def _scan_json(where: str, probe: Read, results: list[Probe]) -> dict[str, Any]:
    return {
        "bus": where,
        "register": f"{probe.table}:{probe.address}",
        "tried": len(results),
        "found": [r.unit for r in results if r.present],
        "answers": [
            {
                "unit": r.unit,
                "answer": r.answer.value,
                "present": r.present,
                "values": list(r.values),
                "exception": r.code,
                "latency_s": r.latency_s,
            }
            for r in results
            if r.answer.value != "silent"
        ],
    }


def read(
    config: Annotated[Path, typer.Argument(help="The gateway's YAML configuration file.", show_default=False)],
    device_id: Annotated[str, typer.Argument(metavar="DEVICE_ID", help="The device's id in the configuration.")],
    as_json: JsonOption = False,
) -> None:
    """Read one device once and print its values: decoded, with units, and the raw registers."""
    from misto.edge.clock import SystemClock
    from misto.edge.drivers import create_driver
    from misto.edge.drivers.modbus.driver import ModbusDriver
    from misto.edge.settings import load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"config INVALID: {len(exc.issues)} error(s); run `misto-edge validate {config}`", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    device = next((d for d in settings.devices if d.id == device_id), None)
    if device is None:
        known = ", ".join(d.id for d in settings.devices) or "none"
        raise _usage(f"no device {device_id!r} in {config}; devices: {known}")
    _quiet_libraries()
    driver = create_driver(device, clock=SystemClock())
    if not isinstance(driver, ModbusDriver):
        raise _usage(f"device {device_id!r} uses driver {device.driver!r}: `read` shows Modbus devices")
    started = time.monotonic()
    try:
        rows = asyncio.run(_readout(driver))
    except EdgeError as exc:
        typer.echo(f"misto-edge read: {exc}", err=True)
        raise typer.Exit(1) from None
    elapsed = time.monotonic() - started
    if as_json:
        typer.echo(json.dumps(_read_json(driver, rows, elapsed), indent=2))
    else:
        typer.echo(_read_text(driver, rows, elapsed))
    raise typer.Exit(1 if any(r.error for r in rows) else 0)


async def _readout(driver: Any) -> list[ReadoutRow]:
    try:
        await driver.start()
        rows: list[ReadoutRow] = await driver.readout()
        return rows
    finally:
        await driver.close()


def _value_text(row: ReadoutRow) -> str:
    if row.error is not None:
        return "-"
    if isinstance(row.value, str):
        return json.dumps(row.value)
    return f"{row.value:.10g}" if isinstance(row.value, float) else str(row.value)


def _raw_text(row: ReadoutRow) -> str:
    return " ".join(f"{w:04X}" for w in row.raw) if not row.table.is_bits else " ".join(map(str, row.raw))


def _read_text(driver: Any, rows: list[ReadoutRow], elapsed: float) -> str:
    config = driver.config
    title = (
        f"device {driver.device_id} ({config.driver}, unit {config.unit_id} on {driver.bus.where}): "
        f"{sum(1 for r in rows if r.error is None)} of {len(rows)} values in {elapsed * 1000:.0f} ms"
    )
    header = ("name", "value", "unit", "table", "address", "raw")
    cells = []
    for r in rows:
        span = f"{r.address}" if len(r.raw) <= 1 else f"{r.address}-{r.address + len(r.raw) - 1}"
        cells.append(
            (r.name, _value_text(r), r.unit or "-", str(r.table), span, _raw_text(r) if r.error is None else "")
        )
    widths = [max(len(row[i]) for row in (header, *cells)) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    errors = dict.fromkeys(r.error for r in rows if r.error)
    lines += [f"error: {error}" for error in errors]
    return "\n".join(lines)


def _read_json(driver: Any, rows: list[ReadoutRow], elapsed: float) -> dict[str, Any]:
    return {
        "device": driver.device_id,
        "driver": driver.config.driver,
        "unit_id": driver.config.unit_id,
        "bus": driver.bus.where,
        "elapsed_s": round(elapsed, 4),
        "ok": not any(r.error for r in rows),
        "values": [
            {
                "device": r.device,
                "name": r.name,
                "kind": "attribute" if r.attribute else "reading",
                "value": r.value,
                "unit": r.unit or None,
                "table": str(r.table),
                "address": r.address,
                "raw": list(r.raw),
                "error": r.error,
            }
            for r in rows
        ],
        "counters": driver.counters.as_dict(),
    }


def register(app: typer.Typer) -> None:
    """Add ``scan`` and ``read`` to the ``misto-edge`` command."""
    app.command()(scan)
    app.command()(read)
