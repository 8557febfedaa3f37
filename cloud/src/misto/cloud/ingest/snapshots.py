"""Every ``ingest.snapshot_interval_s`` the ingester's own counters go into the store
(:meth:`Store.record_ingest`, measurement ``misto_ingest``), so the operations dashboards show
ingest health next to the data. A failed snapshot is logged (once per outage) and skipped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from misto.cloud.errors import StoreError
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.storage.base import Store

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SnapshotRecorder:
    """Records ``stats`` as ``instance`` (the ingester's MQTT client id) every ``interval_s``."""

    def __init__(
        self,
        store: Store,
        stats: IngestStats,
        *,
        instance: str,
        interval_s: float,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self._store = store
        self._stats = stats
        self.instance = instance
        self.interval_s = interval_s
        self._clock = clock
        self.recorded = 0
        self.failures = 0
        self._failing = False

    async def run(self) -> None:
        """Record until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.record()

    async def record(self) -> bool:
        """Record one snapshot now; False (logged) if the store refused it."""
        snapshot = self._stats.snapshot(self.instance, self._clock())
        try:
            await self._store.record_ingest(snapshot)
        except StoreError as exc:
            self.failures += 1
            if not self._failing:
                log.warning("cannot record the ingest snapshot: %s; will try again in %.0fs", exc, self.interval_s)
            self._failing = True
            return False
        if self._failing:
            log.info("ingest snapshots recorded again")
        self._failing = False
        self.recorded += 1
        return True
