"""``/api/v1/gateways``: every gateway's status and health summary (public), and a gateway's whole
latest health message (staff only: it holds the gateway's internals)."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, status

from misto.cloud.api import models
from misto.cloud.api.access import PUBLIC, STAFF, allow
from misto.cloud.api.deps import GatewayDep, StoreDep
from misto.cloud.storage.base import GatewayHealth
from misto.protocol import DeviceState, codec

router = APIRouter(prefix="/api/v1", tags=["gateways"])


@router.get(
    "/gateways",
    response_model=list[models.Gateway],
    summary="Every gateway's status, health summary and when it was last heard",
    dependencies=[PUBLIC],
)
async def list_gateways(store: StoreDep) -> list[models.Gateway]:
    return [
        models.Gateway(
            gateway=g.gateway,
            state=g.state.value if g.state is not None else None,
            boot=g.boot,
            agent_version=g.agent_version,
            status_at=g.status_at,
            last_seen=g.last_seen,
            health=_summary(g.health) if g.health is not None else None,
        )
        for g in await store.gateways()
    ]


@router.get(
    "/gateways/{gateway}/health",
    response_model=models.GatewayHealth,
    dependencies=[allow(*STAFF)],
    tags=["operators"],
    summary="The gateway's newest health message, whole (staff: admin, operator, technician)",
    responses={
        401: {"description": "No credentials"},
        403: {"description": "Credentials refused, or a role not admitted"},
        404: {"description": "No health message from this gateway yet"},
        422: {"description": "Invalid gateway id"},
    },
)
async def gateway_health(gateway: GatewayDep, store: StoreDep) -> models.GatewayHealth:
    latest = await store.gateway_health(gateway)
    if latest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no health message from gateway {gateway!r} yet")
    return models.GatewayHealth(
        gateway=gateway, received_at=latest.received_at, health=json.loads(codec.encode(latest.health))
    )


def _summary(latest: GatewayHealth) -> models.HealthSummary:
    health = latest.health
    states = [device.state for device in health.devices]
    return models.HealthSummary(
        at=health.at,
        received_at=latest.received_at,
        boot=health.boot,
        uptime_s=health.uptime_s,
        cpu_s=health.cpu_s,
        rss_bytes=health.rss_bytes,
        buffer=models.BufferSummary(
            depth=health.buffer.depth, oldest_age_s=health.buffer.oldest_age_s, dropped=health.buffer.dropped
        ),
        devices=models.DeviceCounts(
            ok=states.count(DeviceState.AVAILABLE),
            failing=states.count(DeviceState.UNAVAILABLE),
            starting=states.count(DeviceState.STARTING),
        ),
    )
