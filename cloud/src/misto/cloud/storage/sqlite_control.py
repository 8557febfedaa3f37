"""The control repository on SQLite: its own file (``control.path``), WAL mode, every call on one
dedicated worker thread so the event loop never waits on the disk.

Tables, schema version and migrations: :mod:`misto.cloud.storage.sqlite_control_schema`.
Issue 5 moves these tables into the registry database; the interface
(:class:`misto.cloud.control.ControlRepository`) stays.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from misto.cloud.control.base import AckRecord, CommandRecord, ConfigRecord, ConfigStatus, parse_config_ref
from misto.cloud.errors import VersionConflictError
from misto.cloud.storage.base import from_ms, to_ms
from misto.cloud.storage.sqlite_base import SqliteDatabase
from misto.cloud.storage.sqlite_control_schema import MIGRATIONS, SCHEMA_VERSION
from misto.cloud.storage.sqlite_schema import migrate
from misto.protocol import Ack, AckResult

log = logging.getLogger(__name__)
T = TypeVar("T")
__all__ = ["SCHEMA_VERSION", "SqliteControlRepository"]

_CONFIG_COLUMNS: Final = (
    "gateway, version, config, issued_at, published_at, publish_error, ack_result, ack_detail, ack_at, ack_received_at"
)
_COMMAND_COLUMNS: Final = (
    "id, gateway, action, args, issued_at, expires_at, published_at, publish_error, "
    "ack_result, ack_detail, ack_at, ack_received_at"
)
# A later answer to the same ref replaces an earlier one (the gateway's clock decides); the first
# ack also proves the message was delivered, so an unconfirmed publish becomes a published one.
_ACK_SET: Final = """
SET ack_result = :result, ack_detail = :detail, ack_at = :at, ack_received_at = :received_at,
    published_at = coalesce(published_at, :received_at)
"""
_ACK_NEWER: Final = "(ack_at IS NULL OR ack_at <= :at)"


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _ms(moment: datetime | None) -> int | None:
    return to_ms(moment) if moment is not None else None


def _time(ms: int | None) -> datetime | None:
    return from_ms(ms) if ms is not None else None


def _ack(result: str | None, detail: str | None, at: int | None, received_at: int | None) -> AckRecord | None:
    if result is None or at is None or received_at is None:
        return None
    return AckRecord(AckResult(result), detail or "", from_ms(at), from_ms(received_at))


def _config(row: tuple[Any, ...]) -> ConfigRecord:
    gateway, version, config, issued, published, error, *ack = row
    return ConfigRecord(gateway, version, json.loads(config), from_ms(issued), _time(published), error, _ack(*ack))


def _command(row: tuple[Any, ...]) -> CommandRecord:
    command_id, gateway, action, args, issued, expires, published, error, *ack = row
    return CommandRecord(
        command_id,
        gateway,
        action,
        json.loads(args),
        from_ms(issued),
        from_ms(expires),
        _time(published),
        error,
        _ack(*ack),
    )


class SqliteControlRepository(SqliteDatabase):
    """Open with :meth:`open`; close with :meth:`close` (or ``async with``)."""

    what = "control database"
    thread_name = "misto-control-db"

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: timedelta = timedelta(seconds=5)) -> SqliteControlRepository:
        """Open (creating or migrating) the database at ``path``."""
        repository = cls(path, busy_timeout=busy_timeout)
        await repository._open_in_worker()
        return repository

    async def __aenter__(self) -> SqliteControlRepository:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, operation: str, fn: Callable[..., T], *args: object) -> T:
        return await super()._call(f"control {operation}", fn, *args)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        migrate(conn, self.path, MIGRATIONS, what="control database")

    # -- configuration versions ----------------------------------------------------------------

    async def add_config(
        self, gateway: str, config: Mapping[str, Any], *, version: int | None, issued_at: datetime
    ) -> ConfigRecord:
        text = _json(config)
        chosen = await self._call("add_config", self._add_config, gateway, text, version, to_ms(issued_at))
        return ConfigRecord(gateway, chosen, json.loads(text), issued_at)

    def _add_config(self, gateway: str, text: str, version: int | None, issued_at: int) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            latest: int = db.execute(
                "SELECT coalesce(max(version), 0) FROM configs WHERE gateway = ?", (gateway,)
            ).fetchone()[0]
            if version is None:
                version = latest + 1
            elif version <= latest:
                raise VersionConflictError(gateway, version, latest)
            db.execute(
                "INSERT INTO configs (gateway, version, config, issued_at) VALUES (?, ?, ?, ?)",
                (gateway, version, text, issued_at),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return version

    async def config_published(
        self, gateway: str, version: int, *, at: datetime | None, error: str | None = None
    ) -> None:
        await self._call("config_published", self._config_published, gateway, version, _ms(at), error)

    def _config_published(self, gateway: str, version: int, at: int | None, error: str | None) -> None:
        self._db.execute(
            "UPDATE configs SET published_at = coalesce(published_at, ?), publish_error = ? "
            "WHERE gateway = ? AND version = ?",
            (at, error, gateway, version),
        )

    async def config_status(self, gateway: str) -> ConfigStatus:
        return await self._call("config_status", self._config_status, gateway)

    def _config_status(self, gateway: str) -> ConfigStatus:
        db = self._db

        def newest(condition: str) -> ConfigRecord | None:
            row = db.execute(
                f"SELECT {_CONFIG_COLUMNS} FROM configs WHERE gateway = ? AND {condition} "  # noqa: S608  # constants only
                "ORDER BY version DESC LIMIT 1",
                (gateway,),
            ).fetchone()
            return _config(row) if row is not None else None

        latest, applied = db.execute(
            "SELECT coalesce(max(version), 0), max(CASE WHEN ack_result = 'ok' THEN version END) "
            "FROM configs WHERE gateway = ?",
            (gateway,),
        ).fetchone()
        return ConfigStatus(
            gateway=gateway,
            desired=newest("published_at IS NOT NULL"),
            last_acked=newest("ack_result IS NOT NULL"),
            applied_version=applied,
            next_version=latest + 1,
        )

    # -- commands ----------------------------------------------------------------------------

    async def add_command(self, command: CommandRecord) -> None:
        row = (
            command.id,
            command.gateway,
            command.action,
            _json(command.args),
            to_ms(command.issued_at),
            to_ms(command.expires_at),
            _ms(command.published_at),
            command.publish_error,
        )
        await self._call("add_command", self._add_command, row)

    def _add_command(self, row: tuple[object, ...]) -> None:
        self._db.execute(
            "INSERT INTO commands (id, gateway, action, args, issued_at, expires_at, published_at, publish_error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    async def command_published(
        self, gateway: str, command_id: str, *, at: datetime | None, error: str | None = None
    ) -> None:
        await self._call("command_published", self._command_published, gateway, command_id, _ms(at), error)

    def _command_published(self, gateway: str, command_id: str, at: int | None, error: str | None) -> None:
        self._db.execute(
            "UPDATE commands SET published_at = coalesce(published_at, ?), publish_error = ? "
            "WHERE gateway = ? AND id = ?",
            (at, error, gateway, command_id),
        )

    async def commands(self, gateway: str, limit: int) -> list[CommandRecord]:
        return await self._call("commands", self._commands, gateway, limit)

    def _commands(self, gateway: str, limit: int) -> list[CommandRecord]:
        rows = self._db.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM commands WHERE gateway = ? ORDER BY rowid DESC LIMIT ?",  # noqa: S608
            (gateway, limit),
        ).fetchall()
        return [_command(row) for row in rows]

    async def command(self, gateway: str, command_id: str) -> CommandRecord | None:
        return await self._call("command", self._command, gateway, command_id)

    def _command(self, gateway: str, command_id: str) -> CommandRecord | None:
        row = self._db.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM commands WHERE gateway = ? AND id = ?",  # noqa: S608
            (gateway, command_id),
        ).fetchone()
        return _command(row) if row is not None else None

    # -- acks --------------------------------------------------------------------------------

    async def record_ack(self, gateway: str, ack: Ack, *, received_at: datetime) -> bool:
        return await self._call("record_ack", self._record_ack, gateway, ack, to_ms(received_at))

    def _record_ack(self, gateway: str, ack: Ack, received_at: int) -> bool:
        values = {
            "gateway": gateway,
            "ref": ack.ref,
            "result": ack.result.value,
            "detail": ack.detail,
            "at": to_ms(ack.at),
            "received_at": received_at,
        }
        version = parse_config_ref(ack.ref)
        if version is not None:
            table, key = "configs", "version = :version"
            values["version"] = version
        else:
            table, key = "commands", "id = :ref"
        db = self._db
        # The row is known (True) whether or not this ack was newer than the one stored.
        known = db.execute(f"SELECT 1 FROM {table} WHERE gateway = :gateway AND {key}", values).fetchone()  # noqa: S608
        if known is None:
            return False
        db.execute(f"UPDATE {table} {_ACK_SET} WHERE gateway = :gateway AND {key} AND {_ACK_NEWER}", values)
        return True
