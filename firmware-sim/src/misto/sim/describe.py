"""Register maps for people and programs: a one-line summary, a text table, a Markdown table
(the README's tables are this output, and a test keeps them equal) and plain data for JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from misto.sim.devices import DeviceModel, RegisterTable, SimRegister

FUNCTION_CODES = {RegisterTable.INPUT: 4, RegisterTable.HOLDING: 3}
HEADER = ("addr", "words", "metric", "table", "type", "word order", "scale", "unit", "range", "signal")


def summary(model: DeviceModel) -> str:
    """``Misto AQ-1 air-quality station: Modbus TCP, input registers 0-11 (pm25, ...)``"""
    tables = ", ".join(
        f"{t} registers {min(r.address for r in model.registers if r.table is t)}-"
        f"{max(r.last_address for r in model.registers if r.table is t)}"
        for t in model.tables
    )
    metrics = ", ".join(r.metric for r in model.registers)
    return f"{model.title}: Modbus TCP, {tables} ({metrics})"


def as_data(model: DeviceModel) -> dict[str, Any]:
    """The model as JSON-ready data (``describe --json``)."""
    return {
        "id": model.id,
        "title": model.title,
        "transport": "modbus-tcp",
        "registers": [
            {
                "metric": r.metric,
                "unit": r.unit,
                "table": str(r.table),
                "function": FUNCTION_CODES[r.table],
                "address": r.address,
                "words": r.words,
                "type": str(r.type),
                "word_order": str(r.word_order),
                "scale": r.scale,
                "range": [r.signal.floor, r.signal.ceiling],
                "signal": r.signal.describe(),
            }
            for r in model.registers
        ],
    }


def _cells(r: SimRegister) -> tuple[str, ...]:
    return (
        str(r.address),
        str(r.words),
        r.metric,
        f"{r.table} ({FUNCTION_CODES[r.table]:02d})",
        str(r.type),
        str(r.word_order) if r.words > 1 else "-",
        f"{r.scale:g}",
        r.unit,
        f"{r.signal.floor:g}..{r.signal.ceiling:g}",
        r.signal.describe(),
    )


def text_table(model: DeviceModel) -> str:
    """Aligned columns for a terminal (``describe``)."""
    rows = [_cells(r) for r in model.registers]
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER) - 1)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)) + "  " + cells[-1]

    title = f"{model.id}: {model.title} (Modbus TCP, unit 1 unless the --device spec says otherwise)"
    return "\n".join([title, line(HEADER), *(line(r) for r in rows)])


def markdown_table(model: DeviceModel) -> str:
    """A Markdown table (``describe --markdown``), as the README shows it."""
    rows = [HEADER, tuple("---" for _ in HEADER), *(_cells(r) for r in model.registers)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
