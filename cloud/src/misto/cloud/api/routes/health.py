from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Response, status

from misto.cloud import __version__
from misto.cloud.api import models
from misto.cloud.api.access import PUBLIC
from misto.cloud.api.deps import StateDep
from misto.cloud.errors import CloudError

router = APIRouter(tags=["health"], dependencies=[PUBLIC])
log = logging.getLogger(__name__)


@router.get("/health", response_model=models.Health, summary="Service health and ingest counters")
async def health(state: StateDep, response: Response) -> models.Health:
    store = await _store_health(state)
    ingester = _ingester_health(state)
    verdict: Literal["ok", "degraded", "failing"]
    if not store.reachable:
        verdict = "failing"
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    elif ingester.running and not ingester.connected:
        verdict = "degraded"
    else:
        verdict = "ok"
    return models.Health(status=verdict, version=__version__, store=store, ingester=ingester)


async def _store_health(state: StateDep) -> models.StoreHealth:
    if state.store is None:
        return models.StoreHealth(reachable=False, error="the store is not open")
    try:
        await state.store.ping()
    except CloudError as exc:
        log.warning("health check: %s", exc)
        return models.StoreHealth(reachable=False, error=str(exc))
    counts, counted_at = await state.counts.get(state.store)
    if counts is None:
        return models.StoreHealth(reachable=True)
    return models.StoreHealth(
        reachable=True,
        counts=models.StoreCounts(
            series=counts.series,
            readings=counts.readings,
            messages=counts.messages,
            dead_letters=counts.dead_letters,
            gateways=counts.gateways,
        ),
        counted_at=counted_at,
    )


def _ingester_health(state: StateDep) -> models.IngesterHealth:
    stats = state.ingest
    if stats is None:
        return models.IngesterHealth(running=False)
    return models.IngesterHealth(
        running=True,
        connected=stats.connected,
        messages_received=stats.messages_received,
        telemetry_stored=stats.telemetry_stored,
        readings_stored=stats.readings_stored,
        duplicates=stats.duplicates,
        decode_errors=stats.decode_errors,
        dead_letters={kind.value: count for kind, count in stats.dead_letters.items()},
        status_stored=stats.status_stored,
        status_stale=stats.status_stale,
        health_stored=stats.health_stored,
        health_stale=stats.health_stale,
        acks_stored=stats.acks_stored,
        ignored=stats.ignored,
        acked=stats.acked,
        store_retries=stats.store_retries,
        internal_errors=stats.internal_errors,
        connects=stats.connects,
        connection_failures=stats.connection_failures,
        published=stats.published,
        publish_failures=stats.publish_failures,
        last_message_at=stats.last_message_at,
    )
