from __future__ import annotations

from fastapi import APIRouter

from misto.cloud.api import models
from misto.cloud.api.deps import StoreDep

router = APIRouter(prefix="/api/v1", tags=["gateways"])


@router.get(
    "/gateways", response_model=list[models.Gateway], summary="Every gateway's status and when it was last heard"
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
        )
        for g in await store.gateways()
    ]
