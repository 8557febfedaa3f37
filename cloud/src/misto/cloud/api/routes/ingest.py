"""``GET /api/v1/ingest``: what the ingester of this process took in, wrote and refused, with the
refusals per gateway and kind (operators and admins). The refused items themselves are at
``GET /api/v1/dead-letters?gateway=...``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from misto.cloud.api.access import allow
from misto.cloud.api.deps import StateDep
from misto.cloud.auth.roles import Role

router = APIRouter(prefix="/api/v1", tags=["operators"])


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class GatewayRejections(_Out):
    gateway: str = Field(description="Topic gateway; '-' for a topic outside the scheme")
    total: int
    by_kind: dict[str, int] = Field(description="Dead-lettered messages or readings by kind (non-zero only)")


class IngestReport(_Out):
    connected: bool = Field(description="Subscribed to the broker")
    messages_received: int
    messages_acknowledged: int
    readings_received: int = Field(description="In decoded telemetry, duplicates included")
    readings_written: int
    duplicates: int = Field(description="Redelivered messages dropped by message id")
    rejected: int = Field(description="Messages or readings dead-lettered, all kinds")
    rejected_by_kind: dict[str, int]
    gateways: list[GatewayRejections] = Field(description="Gateways with refusals, most refused first")
    batches: int = Field(description="Store writes of a batch of telemetry")
    batch_mean_readings: float
    write_mean_ms: float
    store_errors: int
    store_retries: int
    queue_depth: int = Field(description="Received messages waiting for the ingester")
    receive_maximum: int | None = Field(description="Unacknowledged messages the broker may send (MQTT 5)")
    lag_s: float = Field(description="Now minus the receive time of the oldest unacknowledged message")
    reading_age_s: float | None = Field(description="Now minus the newest reading time written")
    last_message_at: datetime | None


@router.get(
    "/ingest",
    response_model=IngestReport,
    dependencies=[allow(Role.ADMIN, Role.OPERATOR)],
    summary="Ingest counters and refusals per gateway (operators)",
    responses={
        401: {"description": "No credentials"},
        403: {"description": "Credentials refused, or a role not admitted"},
        404: {"description": "No ingester runs in this process"},
    },
)
async def ingest_report(
    state: StateDep,
    gateway: Annotated[str | None, Query(max_length=63, description="Only this gateway's refusals")] = None,
) -> IngestReport:
    stats = state.ingest
    if stats is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no ingester runs in this process (API only)")
    now = datetime.now(UTC)
    gateways = [
        GatewayRejections(
            gateway=name,
            total=sum(kinds.values()),
            by_kind={kind.value: count for kind, count in kinds.items() if count},
        )
        for name, kinds in list(stats.rejected_by_gateway.items())
        if gateway is None or name == gateway
    ]
    gateways.sort(key=lambda g: (-g.total, g.gateway))
    batches, writes = stats.batch_readings.count, stats.write_seconds
    return IngestReport(
        connected=stats.connected,
        messages_received=stats.messages_received,
        messages_acknowledged=stats.acked,
        readings_received=stats.readings_received,
        readings_written=stats.readings_stored,
        duplicates=stats.duplicates,
        rejected=stats.dead_letters_total,
        rejected_by_kind={kind.value: count for kind, count in stats.dead_letters.items() if count},
        gateways=gateways,
        batches=stats.batches,
        batch_mean_readings=stats.batch_readings.total / batches if batches else 0.0,
        write_mean_ms=1000.0 * writes.total / writes.count if writes.count else 0.0,
        store_errors=stats.store_errors,
        store_retries=stats.store_retries,
        queue_depth=stats.queue_depth(),
        receive_maximum=stats.receive_maximum,
        lag_s=stats.lag_s(now),
        reading_age_s=stats.reading_age_s(now),
        last_message_at=stats.last_message_at,
    )
