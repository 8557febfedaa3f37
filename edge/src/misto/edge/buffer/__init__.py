"""Store-and-forward buffers behind one interface: ``sqlite`` (on disk, the default) and ``memory``."""

from misto.edge.buffer.base import Buffer, BufferLimits, BufferStats, DropPolicy, Entry, Outbound, SyncMode
from misto.edge.buffer.factory import make_buffer
from misto.edge.buffer.memory import MemoryBuffer
from misto.edge.buffer.settings import BufferSettings

__all__ = [
    "Buffer",
    "BufferLimits",
    "BufferSettings",
    "BufferStats",
    "DropPolicy",
    "Entry",
    "MemoryBuffer",
    "Outbound",
    "SyncMode",
    "make_buffer",
]
