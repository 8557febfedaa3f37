"""People and API keys in the registry's database (tables ``users`` and ``api_keys``), on top of
:class:`~misto.cloud.registry.sql.SqlRegistry` as the broker accounts are: its worker threads, its
error translation and its audit log, written in the same transaction as each change (entities
``user`` and ``api_key``; never a password hash, a key's secret or its hash).

Password hashing (Argon2, slow on purpose) happens before the transaction, in another thread, so
the registry's single SQLite writer never waits on it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from misto.cloud.auth import keys
from misto.cloud.auth.models import (
    ApiKey,
    IssuedKey,
    User,
    check_rate_limit,
    check_text,
    check_username,
)
from misto.cloud.auth.passwords import hash_password
from misto.cloud.auth.roles import Role
from misto.cloud.registry import audit
from misto.cloud.registry.errors import AlreadyExistsError, NotFoundError, StaleVersionError
from misto.cloud.registry.models import AuditAction, Entity
from misto.cloud.registry.rows import utc
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.tables import api_keys, audit_log, users

USER_ENTITY = Entity.USER
KEY_ENTITY = Entity.API_KEY


@dataclass(frozen=True, slots=True)
class Login:
    """A user with the hash to verify a password against (kept out of :class:`User`)."""

    user: User
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyCheck:
    api_key: ApiKey
    secret_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Change:
    """An audit entry of a user or key."""

    seq: int
    at: datetime
    actor: str
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _user(row: sa.Row[Any]) -> User:
    return User(
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        disabled=bool(row.disabled),
        password_changed_at=utc(row.password_changed_at),
        last_login_at=utc(row.last_login_at) if row.last_login_at is not None else None,
        version=row.version,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        organisation=row.organisation,
        role=Role(row.role),
        rate_limit=row.rate_limit,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        revoked_at=utc(row.revoked_at) if row.revoked_at is not None else None,
    )


class AuthStore:
    """Users and API keys: create, change, list, and what sign-in and key checks read."""

    def __init__(self, registry: SqlRegistry) -> None:
        self._registry = registry

    # --- people -----------------------------------------------------------------------------

    async def create_user(self, username: str, *, display_name: str, role: Role, password: str, actor: str) -> User:
        check_username(username)
        check_text(display_name, "display_name")
        password_hash = await asyncio.to_thread(hash_password, password)

        def insert(conn: sa.Connection) -> User:
            now = self._registry.now()
            if self._user_row(conn, username) is not None:
                raise AlreadyExistsError("user", username)
            values = {
                "username": username,
                "display_name": display_name,
                "role": role.value,
                "password_hash": password_hash,
                "password_changed_at": now,
                "disabled": False,
                "last_login_at": None,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            try:
                conn.execute(users.insert().values(**values))
            except exc.IntegrityError as error:  # a concurrent create of the same username
                raise AlreadyExistsError("user", username) from error
            created = self._fetch_user(conn, username)
            _audit(conn, now, actor, USER_ENTITY, username, AuditAction.CREATE, None, created.snapshot())
            return created

        return await self._registry.transaction("create_user", insert, actor=actor)

    async def update_user(
        self,
        username: str,
        *,
        actor: str,
        display_name: str | None = None,
        role: Role | None = None,
        disabled: bool | None = None,
        password: str | None = None,
        version: int | None = None,
    ) -> User:
        """Change the fields given (a new password also refuses the tokens issued before it)."""
        if display_name is not None:
            check_text(display_name, "display_name")
        password_hash = await asyncio.to_thread(hash_password, password) if password is not None else None

        def change(conn: sa.Connection) -> User:
            before = self._fetch_user(conn, username, lock=True)
            if version is not None and before.version != version:
                raise StaleVersionError("user", username, version, before.version)
            now = self._registry.now()
            values: dict[str, Any] = {}
            if display_name is not None:
                values["display_name"] = display_name
            if role is not None:
                values["role"] = role.value
            if disabled is not None:
                values["disabled"] = disabled
            if password_hash is not None:
                values["password_hash"] = password_hash
                values["password_changed_at"] = now
            done = conn.execute(
                users.update()
                .where(users.c.username == username, users.c.version == before.version)
                .values(**values, version=before.version + 1, updated_at=now)
            )
            if done.rowcount != 1:
                raise StaleVersionError("user", username, before.version, self._fetch_user(conn, username).version)
            after = self._fetch_user(conn, username)
            _audit(conn, now, actor, USER_ENTITY, username, AuditAction.UPDATE, before.snapshot(), after.snapshot())
            return after

        return await self._registry.transaction("update_user", change, actor=actor)

    async def delete_user(self, username: str, *, actor: str) -> None:
        def delete(conn: sa.Connection) -> None:
            before = self._fetch_user(conn, username, lock=True)
            conn.execute(users.delete().where(users.c.username == username))
            now = self._registry.now()
            _audit(conn, now, actor, USER_ENTITY, username, AuditAction.DELETE, before.snapshot(), None)

        await self._registry.transaction("delete_user", delete, actor=actor)

    async def get_user(self, username: str) -> User:
        return await self._registry.transaction("get_user", lambda c: self._fetch_user(c, username))

    async def users(self) -> list[User]:
        query = sa.select(users).order_by(users.c.username)
        return await self._registry.transaction("list_users", lambda c: [_user(r) for r in c.execute(query)])

    async def login(self, username: str) -> Login | None:
        """The user and their password hash, or None for an unknown username."""

        def read(conn: sa.Connection) -> Login | None:
            row = self._user_row(conn, username)
            return None if row is None else Login(_user(row), row.password_hash)

        return await self._registry.transaction("read_login", read)

    async def record_login(self, username: str) -> None:
        """Set the user's last sign-in (not audited: it is not a change of the account)."""
        now = self._registry.now()
        query = users.update().where(users.c.username == username).values(last_login_at=now)
        await self._registry.transaction("record_login", lambda c: c.execute(query))

    # --- API keys ---------------------------------------------------------------------------

    async def create_key(self, *, name: str, organisation: str, role: Role, rate_limit: int, actor: str) -> IssuedKey:
        check_text(name, "name")
        check_text(organisation, "organisation")
        check_rate_limit(rate_limit)
        parts, key = keys.new_key()

        def insert(conn: sa.Connection) -> ApiKey:
            now = self._registry.now()
            conn.execute(
                api_keys.insert().values(
                    id=parts.key_id,
                    secret_hash=keys.hash_secret(parts.secret),
                    name=name,
                    organisation=organisation,
                    role=role.value,
                    rate_limit=rate_limit,
                    created_by=actor,
                    created_at=now,
                    revoked_at=None,
                )
            )
            created = self._fetch_key(conn, parts.key_id)
            _audit(conn, now, actor, KEY_ENTITY, created.id, AuditAction.CREATE, None, created.snapshot())
            return created

        return IssuedKey(await self._registry.transaction("create_api_key", insert, actor=actor), key)

    async def revoke_key(self, key_id: str, *, actor: str) -> ApiKey:
        """Revoke a key (it answers 403 from now on); revoking a revoked key changes nothing."""

        def revoke(conn: sa.Connection) -> ApiKey:
            before = self._fetch_key(conn, key_id, lock=True)
            if before.revoked:
                return before
            now = self._registry.now()
            conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=now))
            after = self._fetch_key(conn, key_id)
            _audit(conn, now, actor, KEY_ENTITY, key_id, AuditAction.UPDATE, before.snapshot(), after.snapshot())
            return after

        return await self._registry.transaction("revoke_api_key", revoke, actor=actor)

    async def get_key(self, key_id: str) -> ApiKey:
        return await self._registry.transaction("get_api_key", lambda c: self._fetch_key(c, key_id))

    async def keys(self, *, organisation: str | None = None) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.organisation, api_keys.c.id)
        if organisation is not None:
            query = query.where(api_keys.c.organisation == organisation)
        return await self._registry.transaction("list_api_keys", lambda c: [_key(r) for r in c.execute(query)])

    async def key_check(self, key_id: str) -> KeyCheck | None:
        """The key and its secret's hash, or None for an unknown id."""
        query = sa.select(api_keys).where(api_keys.c.id == key_id)

        def read(conn: sa.Connection) -> KeyCheck | None:
            row = conn.execute(query).first()
            return None if row is None else KeyCheck(_key(row), row.secret_hash)

        return await self._registry.transaction("read_api_key", read)

    # --- audit ------------------------------------------------------------------------------

    async def changes(self, entity: str, entity_id: str, *, limit: int = 100) -> list[Change]:
        """The audit entries of a user (``user``) or key (``api_key``), newest first."""
        query = (
            sa.select(audit_log)
            .where(audit_log.c.entity == entity, audit_log.c.entity_id == entity_id)
            .order_by(audit_log.c.seq.desc())
            .limit(limit)
        )

        def read(conn: sa.Connection) -> list[Change]:
            return [
                Change(r.seq, utc(r.at), r.actor, r.entity, r.entity_id, r.action, r.before, r.after)
                for r in conn.execute(query)
            ]

        return await self._registry.transaction("auth_audit", read)

    # --- in the worker thread ---------------------------------------------------------------

    @staticmethod
    def _user_row(conn: sa.Connection, username: str, *, lock: bool = False) -> sa.Row[Any] | None:
        query = sa.select(users).where(users.c.username == username)
        return conn.execute(query.with_for_update() if lock else query).first()

    def _fetch_user(self, conn: sa.Connection, username: str, *, lock: bool = False) -> User:
        row = self._user_row(conn, username, lock=lock)
        if row is None:
            raise NotFoundError("user", username)
        return _user(row)

    @staticmethod
    def _fetch_key(conn: sa.Connection, key_id: str, *, lock: bool = False) -> ApiKey:
        query = sa.select(api_keys).where(api_keys.c.id == key_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError("API key", key_id)
        return _key(row)


def _audit(  # noqa: PLR0917 - one audit row's columns
    conn: sa.Connection,
    at: datetime,
    actor: str,
    entity: Entity,
    entity_id: str,
    action: AuditAction,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit.record_change(
        conn, at=at, actor=actor, entity=entity, entity_id=entity_id, action=action, before=before, after=after
    )
