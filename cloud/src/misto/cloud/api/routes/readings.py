from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from misto.cloud.api import models
from misto.cloud.api.access import PUBLIC
from misto.cloud.api.deps import StoreDep
from misto.cloud.api.params import check_metric
from misto.cloud.api.visibility import DeviceFilterDep

router = APIRouter(prefix="/api/v1/readings", tags=["readings"], dependencies=[PUBLIC])


@router.get("/latest", response_model=list[models.Reading], summary="The latest reading of each series")
async def latest(
    store: StoreDep,
    shown: DeviceFilterDep,
    device: Annotated[str | None, Query(max_length=128, description="Only this device")] = None,
    metric: Annotated[str | None, Query(max_length=64, description="Only this metric")] = None,
) -> list[models.Reading]:
    check_metric(metric)
    rows = await store.latest(device=device, metric=metric)
    return [
        models.Reading(device=r.device, metric=r.metric, value=r.value, unit=r.unit, ts=r.ts, gateway=r.gateway)
        for r in rows
        if shown.shows(r.device)
    ]
