from __future__ import annotations

from fastapi import APIRouter

from misto.cloud.api import models
from misto.cloud.api.access import PUBLIC
from misto.cloud.api.deps import StoreDep
from misto.cloud.api.visibility import DeviceFilterDep

router = APIRouter(prefix="/api/v1", tags=["devices"], dependencies=[PUBLIC])


@router.get("/devices", response_model=list[models.Device], summary="Every device with its latest readings")
async def list_devices(store: StoreDep, shown: DeviceFilterDep) -> list[models.Device]:
    devices = await store.devices()
    return [
        models.Device(
            device=info.device,
            gateway=info.gateway,
            last_seen=info.last_seen,
            readings=[
                models.MetricReading(metric=r.metric, value=r.value, unit=r.unit, ts=r.ts) for r in info.readings
            ],
        )
        for info in sorted(devices, key=lambda d: d.device)
        if shown.shows(info.device)
    ]
