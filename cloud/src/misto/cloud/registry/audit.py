"""The audit log: who changed which record when, and its value before and after (JSON), written by
the repository in the same transaction as the change, so there is no change without its entry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from misto.cloud.registry.models import AuditAction, AuditEntry, Entity
from misto.cloud.registry.rows import utc
from misto.cloud.registry.tables import audit_log


def record_change(
    conn: sa.Connection,
    *,
    at: datetime,
    actor: str,
    entity: Entity,
    entity_id: str,
    action: AuditAction,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    conn.execute(
        audit_log.insert().values(
            at=utc(at),
            actor=actor,
            entity=entity.value,
            entity_id=entity_id,
            action=action.value,
            before=before,
            after=after,
        )
    )


def changes_of(conn: sa.Connection, entity: Entity, entity_id: str, limit: int) -> list[AuditEntry]:
    """Newest first (by sequence number: two changes in the same instant keep their order)."""
    query = (
        sa.select(audit_log)
        .where(audit_log.c.entity == entity.value, audit_log.c.entity_id == entity_id)
        .order_by(audit_log.c.seq.desc())
        .limit(limit)
    )
    return [
        AuditEntry(
            seq=row.seq,
            at=utc(row.at),
            actor=row.actor,
            entity=Entity(row.entity),
            entity_id=row.entity_id,
            action=AuditAction(row.action),
            before=row.before,
            after=row.after,
        )
        for row in conn.execute(query)
    ]
