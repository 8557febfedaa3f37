"""The store's totals for ``GET /health``, computed at most every ``max_age_s`` and in the
background: counting may scan the whole store (InfluxDB counts every raw point), and a health
probe every few seconds must stay cheap. Reachability is checked with ``Store.ping`` on every
probe instead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from misto.cloud.errors import CloudError
from misto.cloud.storage.base import Store, StoreCounts

log = logging.getLogger(__name__)

FIRST_WAIT_S = 2.0  # the first probe waits this long for the first count, then answers without it


class CountsCache:
    def __init__(self, max_age_s: float = 30.0) -> None:
        self.max_age_s = max_age_s
        self.value: StoreCounts | None = None
        self.at: datetime | None = None  # when ``value`` was counted
        self._counted = 0.0  # monotonic time of ``value``
        self._task: asyncio.Task[None] | None = None

    async def get(self, store: Store) -> tuple[StoreCounts | None, datetime | None]:
        """The latest totals and when they were counted (``None`` before the first count ends)."""
        stale = self.value is None or time.monotonic() - self._counted > self.max_age_s
        if stale and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._refresh(store), name="misto-health-counts")
        if self.value is None and self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), FIRST_WAIT_S)
        return self.value, self.at

    async def _refresh(self, store: Store) -> None:
        try:
            counts = await store.counts()
        except CloudError as exc:
            log.warning("counting the store for /health failed: %s", exc)
            return
        self.value, self.at, self._counted = counts, datetime.now(UTC), time.monotonic()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
