from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime

from misto.cloud.api import models
from misto.cloud.api.access import PUBLIC
from misto.cloud.api.deps import StateDep, StoreDep
from misto.cloud.api.params import auto_every, check_metric, parse_every, query_error, window_count
from misto.cloud.api.visibility import DeviceFilterDep
from misto.cloud.storage.base import Resolution

router = APIRouter(prefix="/api/v1", tags=["series"], dependencies=[PUBLIC])
DEFAULT_SPAN = timedelta(hours=24)
AUTO = "auto"
RESOLUTION_CHOICES = (AUTO, *(r.value for r in Resolution))


def parse_resolution(text: str | None) -> Resolution | None:
    """``raw``, ``1m``, ``1h`` or ``auto`` (None: the store chooses); 422 naming ``resolution`` otherwise."""
    if text is None or text == AUTO:
        return None
    try:
        return Resolution(text)
    except ValueError:
        query_error("resolution", f"must be one of {', '.join(RESOLUTION_CHOICES)}", text)


@router.get(
    "/series",
    response_model=models.Series,
    summary="Mean, min, max, count and last value of one device's metric per time window",
    responses={404: {"description": "No such series"}, 422: {"description": "A parameter is invalid (named in loc)"}},
)
async def series(
    *,
    store: StoreDep,
    state: StateDep,
    shown: DeviceFilterDep,
    device: Annotated[str, Query(min_length=1, max_length=128)],
    metric: Annotated[str, Query(min_length=1, max_length=64)],
    from_: Annotated[
        AwareDatetime | None, Query(alias="from", description="RFC 3339 start (inclusive); default: 24 h before to")
    ] = None,
    to: Annotated[AwareDatetime | None, Query(description="RFC 3339 end (exclusive); default: now")] = None,
    every: Annotated[
        str | None,
        Query(description="Window: 30s, 5m, 1h, 1d or seconds; default: chosen for about 500 windows at most"),
    ] = None,
    resolution: Annotated[
        str | None,
        Query(
            description="Data to read: raw readings, 1m or 1h rollups (every must be a multiple), "
            "or auto (default): the coarsest that fits every and is still kept for the range"
        ),
    ] = None,
) -> models.Series:
    check_metric(metric)
    chosen = parse_resolution(resolution)
    end = to.astimezone(UTC) if to is not None else datetime.now(UTC)
    start = from_.astimezone(UTC) if from_ is not None else end - DEFAULT_SPAN
    if end <= start:
        query_error("to", f"to ({end.isoformat()}) must be after from ({start.isoformat()})", to)
    span = end - start
    window = parse_every(every) if every is not None else auto_every(span)
    if chosen is not None and chosen.span is not None and window % chosen.span:
        query_error("resolution", f"every ({window}) must be a multiple of the {chosen.value} resolution", resolution)
    limit = state.settings.api.max_series_windows
    count = window_count(span, window)
    if count > limit:
        query_error(
            "every",
            f"{count} windows of {window} between from and to exceed the limit of {limit}: "
            "use a longer every or a shorter range",
            every,
        )
    found = await store.series(device, metric, start, end, window, resolution=chosen) if shown.shows(device) else None
    if found is None:  # a device hidden from this caller answers as one without data
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no series for device {device!r} and metric {metric!r}")
    return models.Series(
        device=found.device,
        metric=found.metric,
        unit=found.unit,
        gateway=found.gateway,
        from_=start,
        to=end,
        every_s=window.total_seconds(),
        resolution=found.resolution.value,
        windows=[
            models.Window(start=w.start, mean=w.mean, min=w.min, max=w.max, count=w.count, last=w.last)
            for w in found.windows
        ],
    )


@router.get(
    "/series/list",
    response_model=list[models.SeriesInfo],
    summary="Every stored series (a device's metric) with the time of its first and last reading",
)
async def list_series(
    store: StoreDep,
    shown: DeviceFilterDep,
    device: Annotated[str | None, Query(min_length=1, max_length=128, description="Only this device")] = None,
) -> list[models.SeriesInfo]:
    found = await store.list_series(device)
    return [
        models.SeriesInfo(device=s.device, metric=s.metric, unit=s.unit, gateway=s.gateway, first=s.first, last=s.last)
        for s in found
        if shown.shows(s.device)
    ]
