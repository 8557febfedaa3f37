"""Build the configured buffer (no I/O: a durable buffer opens its file in ``Buffer.open``)."""

from __future__ import annotations

from pathlib import Path

from misto.edge.buffer.base import Buffer
from misto.edge.buffer.memory import MemoryBuffer
from misto.edge.buffer.settings import BufferSettings


def make_buffer(settings: BufferSettings, *, path: Path) -> Buffer:
    """``path`` is the resolved SQLite file (used by ``kind: sqlite`` only)."""
    limits = settings.limits()
    match settings.kind:
        case "memory":
            return MemoryBuffer(
                max_messages=limits.max_messages,
                max_bytes=limits.max_bytes,
                max_age=limits.max_age,
                when_full=limits.when_full,
            )
        case "sqlite":
            from misto.edge.buffer.sqlite import SqliteBuffer

            return SqliteBuffer(
                path,
                max_messages=limits.max_messages,
                max_bytes=limits.max_bytes,
                max_age=limits.max_age,
                when_full=limits.when_full,
                sync=settings.sync,
            )
