"""Gateways in the SQLite store (table ``gateways``): their status and latest health messages
(``health`` and ``health_at``), the SQL and the row mapping, run on the store's worker thread by
:class:`SqliteStore`."""

from __future__ import annotations

import logging
import sqlite3
from typing import Final

from misto.cloud.storage.base import GatewayHealth, GatewayStatus, from_ms, to_ms
from misto.protocol import DecodeError, GatewayState, Health, codec

log = logging.getLogger(__name__)

_SET_HEALTH: Final = """
INSERT INTO gateways (gateway, last_seen, health, health_at, health_received_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (gateway) DO UPDATE SET
    health = excluded.health, health_at = excluded.health_at, health_received_at = excluded.health_received_at,
    last_seen = max(last_seen, excluded.last_seen)
WHERE gateways.health_at IS NULL OR excluded.health_at > gateways.health_at
"""
_GET_HEALTH: Final = "SELECT health, health_received_at FROM gateways WHERE gateway = ?"
_GATEWAYS: Final = """
SELECT gateway, state, boot, agent_version, status_at, last_seen, health, health_received_at
FROM gateways ORDER BY gateway
"""


def set_health(db: sqlite3.Connection, health: Health, received_ms: int) -> bool:
    """Store ``health`` unless a newer one (by ``at``) is already there."""
    row = (health.gateway, received_ms, codec.encode(health).decode(), to_ms(health.at), received_ms)
    return db.execute(_SET_HEALTH, row).rowcount > 0


def get_health(db: sqlite3.Connection, gateway: str) -> GatewayHealth | None:
    row = db.execute(_GET_HEALTH, (gateway,)).fetchone()
    return None if row is None else read_health(gateway, *row)


def read_health(gateway: str, document: str | None, received_ms: int | None) -> GatewayHealth | None:
    """The record of a stored health document; None (and a warning) if it no longer decodes."""
    if document is None or received_ms is None:
        return None
    try:
        health = codec.decode(document.encode(), Health)
    except DecodeError as exc:
        log.warning("stored health of gateway %s is unreadable (%s); shown as none", gateway, exc)
        return None
    return GatewayHealth(gateway=gateway, health=health, received_at=from_ms(received_ms))


def read_gateways(db: sqlite3.Connection) -> list[GatewayStatus]:
    return [
        GatewayStatus(
            gateway=gw,
            state=GatewayState(state) if state is not None else None,
            boot=boot,
            agent_version=version,
            status_at=from_ms(status_at) if status_at is not None else None,
            last_seen=from_ms(last_seen),
            health=read_health(gw, health, health_received),
        )
        for gw, state, boot, version, status_at, last_seen, health, health_received in db.execute(_GATEWAYS)
    ]
