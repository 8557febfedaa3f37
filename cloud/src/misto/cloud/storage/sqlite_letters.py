"""Dead letters in the SQLite store (table ``dead_letters``): the SQL and the row mapping, run on
the store's worker thread by :class:`SqliteStore`."""

from __future__ import annotations

import sqlite3
from typing import Final

from misto.cloud.storage.base import DeadLetter, DeadLetterKind, StoredDeadLetter, from_ms, to_ms

INSERT_DEAD_LETTER: Final = """
INSERT INTO dead_letters (received_at, topic, gateway, kind, reason, field, message_id, payload)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_SELECT: Final = """
SELECT id, received_at, topic, gateway, kind, reason, field, message_id, payload FROM dead_letters
WHERE (:gateway IS NULL OR gateway = :gateway) ORDER BY id DESC LIMIT :limit
"""


def letter_row(letter: DeadLetter) -> tuple[object, ...]:
    return (
        to_ms(letter.received_at),
        letter.topic,
        letter.gateway,
        letter.kind.value,
        letter.reason,
        letter.field,
        letter.message_id,
        letter.payload,
    )


def read_dead_letters(db: sqlite3.Connection, limit: int, gateway: str | None) -> list[StoredDeadLetter]:
    """Newest first (by id: the order they were stored)."""
    rows = db.execute(_SELECT, {"gateway": gateway, "limit": limit}).fetchall()
    return [
        StoredDeadLetter(
            row_id,
            DeadLetter(
                received_at=from_ms(received),
                topic=topic,
                kind=DeadLetterKind(kind),
                reason=reason,
                payload=bytes(payload),
                gateway=gw,
                field=field,
                message_id=message_id,
            ),
        )
        for row_id, received, topic, gw, kind, reason, field, message_id, payload in rows
    ]
