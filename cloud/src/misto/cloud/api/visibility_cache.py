"""The registry's public and private device ids, as the public read endpoints filter by them
(:mod:`.visibility`), read at most every :data:`TTL_S` seconds: a device marked private
disappears from public answers within that."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from misto.cloud.registry import RegistryRepository
from misto.cloud.registry.models import Visibility
from misto.cloud.registry.repository import MAX_LIMIT

TTL_S = 5.0


@dataclass
class VisibilityCache:
    """The registry's public and private device ids, read at most every :data:`TTL_S` seconds."""

    public: frozenset[str] = frozenset()
    private: frozenset[str] = frozenset()
    read_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refresh(self, registry: RegistryRepository) -> None:
        async with self.lock:
            if self.read_at is not None and time.monotonic() - self.read_at < TTL_S:
                return
            public: set[str] = set()
            private: set[str] = set()
            after: str | None = None
            while True:
                page = await registry.list_devices(after=after, limit=MAX_LIMIT)
                for device in page.items:
                    (public if device.visibility is Visibility.PUBLIC else private).add(device.id)
                if page.next_after is None:
                    break
                after = page.next_after
            self.public, self.private = frozenset(public), frozenset(private)
            self.read_at = time.monotonic()
