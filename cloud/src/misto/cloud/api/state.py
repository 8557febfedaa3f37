"""What the routes share, kept on ``app.state.misto`` (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from misto.cloud.api.counts_cache import CountsCache
from misto.cloud.api.visibility_cache import VisibilityCache
from misto.cloud.control import RemoteControl
from misto.cloud.ingest.stats import IngestStats
from misto.cloud.registry import RegistryRepository
from misto.cloud.settings import CloudSettings
from misto.cloud.storage.base import Store


@dataclass
class ApiState:
    settings: CloudSettings
    store: Store | None
    ingest: IngestStats | None  # None: no ingester runs in this process
    operator_token: str | None
    control: RemoteControl | None = None  # None until the app's lifespan opens it (or given by the service)
    registry: RegistryRepository | None = None  # None until the app's lifespan opens it (or given)
    counts: CountsCache = field(default_factory=CountsCache)  # the store's totals for /health
    visibility: VisibilityCache = field(default_factory=VisibilityCache)  # public/private device ids
