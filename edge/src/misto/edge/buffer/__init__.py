"""Store-and-forward buffers behind one interface (memory now; SQLite in issue 3)."""

from misto.edge.buffer.base import Buffer, BufferStats, Entry, Outbound
from misto.edge.buffer.memory import MemoryBuffer

__all__ = ["Buffer", "BufferStats", "Entry", "MemoryBuffer", "Outbound"]
