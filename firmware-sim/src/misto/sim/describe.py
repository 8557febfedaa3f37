"""Register maps for people and programs: a one-line summary, a text table, a Markdown table
(the README's tables are this output, and a test keeps them equal) and plain data for JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from misto.sim.devices import DeviceModel, RegisterTable, RegisterType, SimRegister, SimText, WordOrder

HEADER = ("addr", "words", "name", "table", "type", "layout", "scale", "unit", "range", "signal")


def layout(reg: SimRegister) -> str:
    """Byte layout of a value, ``A`` its most significant byte: ``ABCD`` (big word and byte
    order), ``CDAB``, ``BADC``, ``DCBA``; ``AB``/``BA`` for one register; ``bit N`` for a bit field."""
    if reg.type is RegisterType.BIT:
        return "-" if reg.bit is None else f"bit {reg.bit}" + (" (BA)" if reg.byte_order is WordOrder.LITTLE else "")
    letters = "ABCDEFGH"[: 2 * reg.words]
    pairs = [letters[i : i + 2] for i in range(0, len(letters), 2)]
    if reg.byte_order is WordOrder.LITTLE:
        pairs = [p[::-1] for p in pairs]
    if reg.word_order is WordOrder.LITTLE:
        pairs = pairs[::-1]
    return "".join(pairs)


def _table(table: RegisterTable, writable: bool) -> str:
    return f"{table} ({table.function_code:02d}{', rw' if writable else ''})"


def summary(model: DeviceModel) -> str:
    """``Misto AQ-1 air-quality station: Modbus TCP, input registers 0-11 (pm25, ...)``"""
    spans = []
    for t in model.tables:
        addresses = [a for r in model.registers if r.table is t for a in r.addresses]
        if t is RegisterTable.HOLDING:
            addresses += [a for text in model.identity for a in text.addresses]
        what = "registers" if not t.is_bits else "bits"
        spans.append(f"{t} {what} {min(addresses)}-{max(addresses)}")
    names = list(dict.fromkeys(r.metric for r in model.registers))
    return f"{model.title}: {model.transport}, {', '.join(spans)} ({', '.join(names)})"


def as_data(model: DeviceModel) -> dict[str, Any]:
    """The model as JSON-ready data (``describe --json``)."""
    return {
        "id": model.id,
        "title": model.title,
        "transport": model.transport.value,
        "registers": [
            {
                "name": r.key,
                "metric": r.metric,
                "subdevice": r.subdevice,
                "unit": r.unit,
                "table": str(r.table),
                "function": r.table.function_code,
                "address": r.address,
                "words": r.words,
                "type": str(r.type),
                "word_order": str(r.word_order),
                "byte_order": str(r.byte_order),
                "bit": r.bit,
                "layout": layout(r),
                "writable": r.writable,
                "scale": r.scale,
                "range": [r.signal.floor, r.signal.ceiling],
                "signal": r.signal.describe(),
            }
            for r in model.registers
        ],
        "identity": [
            {"name": t.name, "table": "holding", "address": t.address, "words": t.words, "text": t.text}
            for t in model.identity
        ],
    }


def _cells(r: SimRegister) -> tuple[str, ...]:
    return (
        str(r.address),
        str(r.words),
        r.key,
        _table(r.table, r.writable),
        str(r.type),
        layout(r),
        f"{r.scale:g}",
        r.unit,
        f"{r.signal.floor:g}..{r.signal.ceiling:g}",
        r.signal.describe(),
    )


def _text_cells(t: SimText) -> tuple[str, ...]:
    return (str(t.address), str(t.words), t.name, _table(RegisterTable.HOLDING, False), "string", "AB", "-", "-", "-")
    # the last cell (signal) is added by the caller


def _rows(model: DeviceModel) -> list[tuple[str, ...]]:
    return [_cells(r) for r in model.registers] + [(*_text_cells(t), f'text "{t.text}"') for t in model.identity]


def text_table(model: DeviceModel) -> str:
    """Aligned columns for a terminal (``describe``)."""
    rows = _rows(model)
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER) - 1)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)) + "  " + cells[-1]

    title = f"{model.id}: {model.title} ({model.transport}, unit 1 unless the --device spec says otherwise)"
    return "\n".join([title, line(HEADER), *(line(r) for r in rows)])


def markdown_table(model: DeviceModel) -> str:
    """A Markdown table (``describe --markdown``), as the README shows it."""
    rows = [HEADER, tuple("---" for _ in HEADER), *_rows(model)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
