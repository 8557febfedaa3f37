from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query

from misto.cloud.api import models
from misto.cloud.api.access import allow
from misto.cloud.api.deps import StoreDep
from misto.cloud.auth.roles import Role
from misto.cloud.storage.base import StoredDeadLetter

router = APIRouter(prefix="/api/v1", tags=["operators"])


@router.get(
    "/dead-letters",
    response_model=list[models.DeadLetter],
    dependencies=[allow(Role.ADMIN, Role.OPERATOR)],
    summary="What the ingester could not store, newest first (operators)",
    responses={
        401: {"description": "No credentials"},
        403: {"description": "Credentials refused or role not admitted"},
    },
)
async def list_dead_letters(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    gateway: Annotated[str | None, Query(max_length=63)] = None,
) -> list[models.DeadLetter]:
    letters = await store.dead_letters(limit, gateway=gateway)
    return [_public(stored) for stored in letters]


def _public(stored: StoredDeadLetter) -> models.DeadLetter:
    letter = stored.letter
    try:
        payload, encoding = letter.payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(letter.payload).decode("ascii"), "base64"
    return models.DeadLetter(
        id=stored.id,
        received_at=letter.received_at,
        topic=letter.topic,
        gateway=letter.gateway,
        kind=letter.kind.value,
        reason=letter.reason,
        field=letter.field,
        message_id=letter.message_id,
        payload=payload,
        payload_encoding="utf-8" if encoding == "utf-8" else "base64",
        payload_bytes=len(letter.payload),
    )
