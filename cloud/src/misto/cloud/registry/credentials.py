"""MQTT broker accounts kept in the registry: one per gateway (its username is the gateway id) and
one per cloud service (the ingester, the admin). An account is issued with a random secret that is
shown once; the registry keeps only its hash, in Mosquitto 2.0's PBKDF2-SHA512 format
(``$7$<iterations>$<base64 salt>$<base64 hash>``), so :mod:`.mosquitto_files` writes the broker's
password file from the stored hashes without ever knowing a secret. Rotating replaces the hash;
revoking deletes it. Each change is written to the audit log (never the hash) in the same
transaction. See docs/broker-access.md.

Why 101 PBKDF2 iterations (Mosquitto's own default): the secrets are 32 random bytes, so guessing
one is hopeless however cheap the hash; more iterations would only cost the broker CPU on every
connect, which matters when thousands of gateways reconnect after a broker restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from misto.cloud.registry import audit
from misto.cloud.registry.errors import (
    AlreadyExistsError,
    InvalidFieldError,
    NotFoundError,
    RegistryError,
    StaleVersionError,
)
from misto.cloud.registry.models import AuditAction, Entity, Lifecycle
from misto.cloud.registry.rows import utc
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.tables import broker_accounts, gateways

PBKDF2_ITERATIONS = 101
SALT_BYTES = 12  # as mosquitto_passwd
SECRET_BYTES = 32
SERVICE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # a safe token in the password and ACL files
_SERVICE_NAME = re.compile(SERVICE_NAME_PATTERN)
_HASH = re.compile(r"^\$7\$([1-9][0-9]{0,9})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$")
#: Gateway lifecycle states whose accounts the broker accepts.
BROKER_STATUSES = frozenset({Lifecycle.ACTIVE})
_LABEL = "broker account"


class AccountRole(StrEnum):
    GATEWAY = "gateway"  # publishes its own edge->cloud channels, reads its own config and cmd
    INGESTER = "ingester"  # reads every gateway's edge->cloud channels, writes config and cmd
    ADMIN = "admin"  # operators' tools: everything under misto/, and $SYS


SERVICE_ROLES = frozenset({AccountRole.INGESTER, AccountRole.ADMIN})


class CredentialError(RegistryError):
    """A broker credential could not be issued, rotated or used as asked."""

    def __init__(self, username: str, message: str) -> None:
        self.username = username
        self.message = message
        super().__init__(f"{_LABEL} {username!r}: {message}")


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    """An account as the registry shows it: never its secret, nor the hash."""

    username: str
    role: AccountRole
    gateway_id: str | None
    secret_set_at: datetime | None
    revoked_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def snapshot(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role.value,
            "gateway_id": self.gateway_id,
            "secret_set_at": self.secret_set_at.isoformat() if self.secret_set_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A new secret, to hand to the gateway or service once; the registry cannot show it again."""

    account: BrokerAccount
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PasswordEntry:
    """One line of the broker's password file."""

    username: str
    role: AccountRole
    password_hash: str = field(repr=False)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto 2.0's ``$7$`` line: PBKDF2-HMAC-SHA512 over the UTF-8 secret, standard base64
    (with padding) of the 12-byte salt and the 64-byte hash, as ``mosquitto_passwd`` writes it."""
    if iterations < 1:
        raise ValueError(f"iterations: {iterations} must be at least 1")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, password_hash: str) -> bool:
    """True if ``secret`` matches a ``$7$`` line (constant-time comparison)."""
    match = _HASH.match(password_hash)
    if match is None:
        raise ValueError("password_hash: not a Mosquitto $7$ PBKDF2-SHA512 line")
    iterations, salt, expected = int(match[1]), base64.b64decode(match[2]), base64.b64decode(match[3])
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


def check_service_name(name: str) -> str:
    if not _SERVICE_NAME.match(name):
        raise InvalidFieldError(
            "username", f"{name!r} must be 1-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
        )
    return name


def _account(row: sa.Row[Any]) -> BrokerAccount:
    return BrokerAccount(
        username=row.username,
        role=AccountRole(row.role),
        gateway_id=row.gateway_id,
        secret_set_at=utc(row.secret_set_at) if row.secret_set_at is not None else None,
        revoked_at=utc(row.revoked_at) if row.revoked_at is not None else None,
        version=row.version,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


class BrokerCredentials:
    """Issue, rotate, revoke and list broker accounts in the registry's database."""

    def __init__(self, registry: SqlRegistry) -> None:
        self._registry = registry

    # --- changes ------------------------------------------------------------------------------

    async def issue_gateway(self, gateway_id: str, *, actor: str) -> IssuedSecret:
        """A new account for an existing gateway (username = gateway id), or a fresh secret for
        one that was revoked. An account in use is refused: rotate it instead."""
        secret = new_secret()
        return IssuedSecret(
            await self._registry.transaction(
                "issue_gateway_credentials",
                lambda c: self._issue(c, gateway_id, AccountRole.GATEWAY, hash_secret(secret), actor),
                actor=actor,
            ),
            secret,
        )

    async def issue_service(self, username: str, role: AccountRole, *, actor: str) -> IssuedSecret:
        """A new account for a cloud service (ingester or admin), or a fresh secret for a revoked one."""
        check_service_name(username)
        if role not in SERVICE_ROLES:
            roles = ", ".join(sorted(SERVICE_ROLES))
            raise InvalidFieldError("role", f"{role.value!r} is not a service role ({roles})")
        secret = new_secret()
        return IssuedSecret(
            await self._registry.transaction(
                "issue_service_credentials",
                lambda c: self._issue(c, username, role, hash_secret(secret), actor),
                actor=actor,
            ),
            secret,
        )

    async def rotate(self, username: str, *, actor: str, version: int | None = None) -> IssuedSecret:
        """Replace the secret of an account in use; the old one stops working at the next reload."""
        secret = new_secret()
        password_hash = hash_secret(secret)

        def change(conn: sa.Connection) -> BrokerAccount:
            before = self._fetch(conn, username, lock=True, version=version)
            if before.revoked:
                raise CredentialError(username, "is revoked: issue a new secret instead of rotating")
            return self._set(conn, before, actor, password_hash=password_hash, secret_set_at=self._registry.now())

        return IssuedSecret(await self._registry.transaction("rotate_credentials", change, actor=actor), secret)

    async def revoke(self, username: str, *, actor: str, version: int | None = None) -> BrokerAccount:
        """Delete the account's hash: the broker refuses it from the next reload on."""

        def change(conn: sa.Connection) -> BrokerAccount:
            before = self._fetch(conn, username, lock=True, version=version)
            if before.revoked:
                raise CredentialError(username, "is already revoked")
            return self._set(conn, before, actor, password_hash=None, revoked_at=self._registry.now())

        return await self._registry.transaction("revoke_credentials", change, actor=actor)

    def set_gateway_secret(
        self, conn: sa.Connection, gateway_id: str, password_hash: str, *, actor: str
    ) -> BrokerAccount:
        """In the caller's transaction (provisioning): issue the gateway's account, or replace the
        secret of the one in use (rotate), audited like :meth:`issue_gateway` and :meth:`rotate`."""
        row = conn.execute(
            sa.select(broker_accounts).where(broker_accounts.c.username == gateway_id).with_for_update()
        ).first()
        if row is None or row.password_hash is None:
            return self._issue(conn, gateway_id, AccountRole.GATEWAY, password_hash, actor)
        before = _account(row)
        if before.role is not AccountRole.GATEWAY:
            raise CredentialError(gateway_id, f"is a {before.role.value} account, not a gateway's")
        return self._set(conn, before, actor, password_hash=password_hash, secret_set_at=self._registry.now())

    # --- reads --------------------------------------------------------------------------------

    async def get(self, username: str) -> BrokerAccount:
        return await self._registry.transaction("get_credentials", lambda c: self._fetch(c, username))

    async def accounts(self) -> list[BrokerAccount]:
        """Every account, revoked ones included, ordered by username."""
        query = sa.select(broker_accounts).order_by(broker_accounts.c.username)
        return await self._registry.transaction(
            "list_credentials", lambda c: [_account(row) for row in c.execute(query)]
        )

    async def password_entries(self) -> list[PasswordEntry]:
        """What the broker should accept, read in one transaction: every service account not
        revoked, and every gateway account not revoked whose gateway is active."""
        query = (
            sa.select(broker_accounts.c.username, broker_accounts.c.role, broker_accounts.c.password_hash)
            .select_from(broker_accounts.outerjoin(gateways, gateways.c.id == broker_accounts.c.gateway_id))
            .where(
                broker_accounts.c.password_hash.is_not(None),
                sa.or_(
                    broker_accounts.c.role != AccountRole.GATEWAY.value,
                    gateways.c.status.in_([s.value for s in BROKER_STATUSES]),
                ),
            )
            .order_by(broker_accounts.c.username)
        )
        return await self._registry.transaction(
            "broker_password_entries",
            lambda c: [PasswordEntry(r.username, AccountRole(r.role), r.password_hash) for r in c.execute(query)],
        )

    # --- in the worker thread -----------------------------------------------------------------

    def _fetch(
        self, conn: sa.Connection, username: str, *, lock: bool = False, version: int | None = None
    ) -> BrokerAccount:
        query = sa.select(broker_accounts).where(broker_accounts.c.username == username)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError(_LABEL, username)
        found = _account(row)
        if version is not None and found.version != version:
            raise StaleVersionError(_LABEL, username, version, found.version)
        return found

    def _issue(
        self, conn: sa.Connection, username: str, role: AccountRole, password_hash: str, actor: str
    ) -> BrokerAccount:
        now = self._registry.now()
        if role is AccountRole.GATEWAY:
            gateway = conn.execute(sa.select(gateways.c.id).where(gateways.c.id == username)).first()
            if gateway is None:
                raise NotFoundError("gateway", username)
        row = conn.execute(
            sa.select(broker_accounts).where(broker_accounts.c.username == username).with_for_update()
        ).first()
        if row is not None:
            before = _account(row)
            if not before.revoked:
                raise AlreadyExistsError(_LABEL, username)
            if before.role is not role:
                raise CredentialError(username, f"was a {before.role.value} account, not {role.value}")
            return self._set(conn, before, actor, password_hash=password_hash, secret_set_at=now, revoked_at=None)
        conn.execute(
            broker_accounts.insert().values(
                username=username,
                role=role.value,
                gateway_id=username if role is AccountRole.GATEWAY else None,
                password_hash=password_hash,
                secret_set_at=now,
                revoked_at=None,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        created = self._fetch(conn, username)
        self._audit(conn, action=AuditAction.CREATE, before=None, after=created, actor=actor, at=now)
        return created

    def _set(self, conn: sa.Connection, before: BrokerAccount, actor: str, **values: Any) -> BrokerAccount:
        now = self._registry.now()
        done = conn.execute(
            broker_accounts.update()
            .where(broker_accounts.c.username == before.username, broker_accounts.c.version == before.version)
            .values(**values, version=before.version + 1, updated_at=now)
        )
        if done.rowcount != 1:
            raise StaleVersionError(_LABEL, before.username, before.version, self._fetch(conn, before.username).version)
        after = self._fetch(conn, before.username)
        self._audit(conn, action=AuditAction.UPDATE, before=before, after=after, actor=actor, at=now)
        return after

    def _audit(
        self,
        conn: sa.Connection,
        *,
        action: AuditAction,
        before: BrokerAccount | None,
        after: BrokerAccount,
        actor: str,
        at: datetime,
    ) -> None:
        audit.record_change(
            conn,
            at=at,
            actor=actor,
            entity=Entity.BROKER_ACCOUNT,
            entity_id=after.username,
            action=action,
            before=before.snapshot() if before else None,
            after=after.snapshot(),
        )
