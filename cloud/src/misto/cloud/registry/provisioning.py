"""One-time gateway provisioning tokens: an operator creates one for a registered gateway, the
technician's ``misto-edge provision`` exchanges it for the gateway's MQTT credentials and its
initial configuration. See docs/provisioning.md.

* A token is 32 random bytes (URL-safe base64), shown once; the registry keeps its SHA-256 only
  (a secret this random needs no slow hash, and the digest lets the exchange find it by index).
* It expires (``ttl``, default 24 h), is single-use and revocable. Creating a token for a gateway
  revokes that gateway's older tokens still unused: at most one token per gateway is live, so a
  token printed twice, or sent to the wrong technician, is killed by simply making a new one.
* Exchanging it is one transaction: the token is marked used with a conditional ``UPDATE ...
  WHERE used_at IS NULL AND revoked_at IS NULL`` (of two concurrent exchanges exactly one changes
  the row; the other is refused as "already used"), and the gateway's broker account is issued
  (or its secret replaced, if it had one) in the same transaction. A token whose gateway is not
  ``active`` is refused and stays unused.
* Creating, using and revoking a token are written to the audit log (entity
  ``provisioning_token``; never the token nor its hash).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from misto.cloud.registry import audit
from misto.cloud.registry.credentials import BrokerAccount, BrokerCredentials, hash_secret, new_secret
from misto.cloud.registry.errors import InvalidFieldError, NotFoundError, RegistryError
from misto.cloud.registry.models import AuditAction, DeviceRecord, Entity, GatewayRecord, Lifecycle
from misto.cloud.registry.rows import device_record, gateway_record, utc
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.registry.tables import devices, gateways, provisioning_tokens

TOKEN_BYTES = 32
ID_BYTES = 6  # 12 hex digits: names a token in lists and the audit log
DEFAULT_TTL = timedelta(hours=24)
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(days=30)
MAX_TOKEN_CHARS = 200  # anything longer is not one of ours (and is not hashed)
_LABEL = "provisioning token"


class TokenState(StrEnum):
    PENDING = "pending"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Refusal(StrEnum):
    """Why an exchange was refused."""

    UNKNOWN = "unknown"  # no such token (mistyped, or never issued)
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"
    GATEWAY_INACTIVE = "gateway_inactive"


class ProvisioningError(RegistryError):
    """A token the exchange refuses, with the reason (for the API's status code and the counters)."""

    def __init__(self, refusal: Refusal, message: str, *, token_id: str | None = None) -> None:
        self.refusal = refusal
        self.token_id = token_id
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ProvisioningToken:
    """A token as the registry shows it: never the token itself nor its hash."""

    id: str
    gateway_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> TokenState:
        if self.used_at is not None:
            return TokenState.USED
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if now >= self.expires_at:
            return TokenState.EXPIRED
        return TokenState.PENDING

    def snapshot(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "id": self.id,
            "gateway_id": self.gateway_id,
            "created_by": self.created_by,
            "expires_at": iso(self.expires_at),
            "used_at": iso(self.used_at),
            "revoked_at": iso(self.revoked_at),
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token, to hand to the technician once; the registry cannot show it again."""

    record: ProvisioningToken
    token: str = field(repr=False)
    revoked: tuple[str, ...]  # ids of the gateway's older unused tokens this one replaced


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What an exchange gives the gateway: its account and secret (once), its record and devices."""

    token: ProvisioningToken
    gateway: GatewayRecord
    account: BrokerAccount
    secret: str = field(repr=False)
    devices: tuple[DeviceRecord, ...]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token(row: sa.Row[Any]) -> ProvisioningToken:
    return ProvisioningToken(
        id=row.id,
        gateway_id=row.gateway_id,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        used_at=utc(row.used_at) if row.used_at is not None else None,
        revoked_at=utc(row.revoked_at) if row.revoked_at is not None else None,
    )


def check_ttl(ttl: timedelta) -> timedelta:
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidFieldError("ttl_s", f"{ttl.total_seconds():.0f}s must be between {MIN_TTL} and {MAX_TTL}")
    return ttl


class Provisioning:
    """Create, list, revoke and exchange provisioning tokens in the registry's database."""

    def __init__(self, registry: SqlRegistry) -> None:
        self._registry = registry
        self._credentials = BrokerCredentials(registry)

    def now(self) -> datetime:
        """The registry clock's time (UTC), against which tokens expire."""
        return self._registry.now()

    # --- operators ----------------------------------------------------------------------------

    async def create(self, gateway_id: str, *, actor: str, ttl: timedelta = DEFAULT_TTL) -> IssuedToken:
        """A new token for a registered gateway; its older unused tokens are revoked."""
        check_ttl(ttl)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        token_id = secrets.token_hex(ID_BYTES)

        def change(conn: sa.Connection) -> IssuedToken:
            gateway = conn.execute(sa.select(gateways.c.id).where(gateways.c.id == gateway_id)).first()
            if gateway is None:
                raise NotFoundError("gateway", gateway_id)
            now = self._registry.now()
            revoked = tuple(
                self._revoke(conn, older, actor, now)
                for older in self._select(conn, gateway_id=gateway_id, lock=True)
                if older.state(now) is TokenState.PENDING
            )
            conn.execute(
                provisioning_tokens.insert().values(
                    id=token_id,
                    gateway_id=gateway_id,
                    token_hash=token_digest(token),
                    created_by=actor,
                    created_at=now,
                    expires_at=now + ttl,
                    used_at=None,
                    revoked_at=None,
                )
            )
            created = self._fetch(conn, token_id)
            self._audit(conn, AuditAction.CREATE, None, created, actor, now)
            return IssuedToken(created, token, tuple(t.id for t in revoked))

        return await self._registry.transaction("create_provisioning_token", change, actor=actor)

    async def revoke(self, token_id: str, *, actor: str) -> ProvisioningToken:
        """Revoke a token not yet used (a used one has done its work: rotate or revoke the
        gateway's broker account instead)."""

        def change(conn: sa.Connection) -> ProvisioningToken:
            before = self._fetch(conn, token_id, lock=True)
            if before.used_at is not None:
                raise ProvisioningError(Refusal.USED, f"{_LABEL} {token_id!r} was already used", token_id=token_id)
            if before.revoked_at is not None:
                raise ProvisioningError(Refusal.REVOKED, f"{_LABEL} {token_id!r} is already revoked", token_id=token_id)
            return self._revoke(conn, before, actor, self._registry.now())

        return await self._registry.transaction("revoke_provisioning_token", change, actor=actor)

    async def tokens(self, gateway_id: str) -> list[ProvisioningToken]:
        """The gateway's tokens, newest first."""
        return await self._registry.transaction(
            "list_provisioning_tokens", lambda c: self._select(c, gateway_id=gateway_id)
        )

    async def get(self, token_id: str) -> ProvisioningToken:
        return await self._registry.transaction("get_provisioning_token", lambda c: self._fetch(c, token_id))

    # --- the gateway --------------------------------------------------------------------------

    async def exchange(self, token: str) -> Provisioned:
        """Consume ``token`` and give its gateway a new broker secret; :class:`ProvisioningError`
        says why a token is refused (unknown, expired, used, revoked, gateway not active)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise ProvisioningError(Refusal.UNKNOWN, f"{_LABEL}: unknown token")
        digest = token_digest(token)
        secret = new_secret()
        password_hash = hash_secret(secret)

        def change(conn: sa.Connection) -> Provisioned:
            row = conn.execute(
                sa.select(provisioning_tokens).where(provisioning_tokens.c.token_hash == digest).with_for_update()
            ).first()
            if row is None:
                raise ProvisioningError(Refusal.UNKNOWN, f"{_LABEL}: unknown token")
            found = _token(row)
            now = self._registry.now()
            self._check_usable(found, now)
            gateway = gateway_record(conn.execute(sa.select(gateways).where(gateways.c.id == found.gateway_id)).one())
            if gateway.status is not Lifecycle.ACTIVE:
                raise ProvisioningError(
                    Refusal.GATEWAY_INACTIVE,
                    f"gateway {gateway.id!r} is {gateway.status.value}, not active: "
                    "an operator must set it active before it can be provisioned (the token stays unused)",
                    token_id=found.id,
                )
            actor = f"provisioning:{found.id}"
            done = conn.execute(
                provisioning_tokens.update()
                .where(
                    provisioning_tokens.c.id == found.id,
                    provisioning_tokens.c.used_at.is_(None),
                    provisioning_tokens.c.revoked_at.is_(None),
                )
                .values(used_at=now)
            )
            if done.rowcount != 1:  # another exchange won between our read and write
                self._check_usable(self._fetch(conn, found.id), now)
                raise ProvisioningError(Refusal.USED, f"{_LABEL} {found.id!r} was already used", token_id=found.id)
            used = self._fetch(conn, found.id)
            self._audit(conn, AuditAction.UPDATE, found, used, actor, now)
            account = self._credentials.set_gateway_secret(conn, gateway.id, password_hash, actor=actor)
            query = sa.select(devices).where(devices.c.gateway_id == gateway.id).order_by(devices.c.id)
            owned = tuple(device_record(r) for r in conn.execute(query))
            return Provisioned(used, gateway, account, secret, owned)

        return await self._registry.transaction("exchange_provisioning_token", change)

    # --- in the worker thread -----------------------------------------------------------------

    @staticmethod
    def _check_usable(found: ProvisioningToken, now: datetime) -> None:
        state = found.state(now)
        if state is TokenState.USED:
            assert found.used_at is not None
            message = f"{_LABEL} {found.id!r} was already used (at {found.used_at.isoformat()}): ask for a new one"
            raise ProvisioningError(Refusal.USED, message, token_id=found.id)
        if state is TokenState.REVOKED:
            message = f"{_LABEL} {found.id!r} was revoked: ask the operator for a new one"
            raise ProvisioningError(Refusal.REVOKED, message, token_id=found.id)
        if state is TokenState.EXPIRED:
            message = f"{_LABEL} {found.id!r} expired at {found.expires_at.isoformat()}: ask for a new one"
            raise ProvisioningError(Refusal.EXPIRED, message, token_id=found.id)

    def _select(self, conn: sa.Connection, *, gateway_id: str, lock: bool = False) -> list[ProvisioningToken]:
        query = (
            sa.select(provisioning_tokens)
            .where(provisioning_tokens.c.gateway_id == gateway_id)
            .order_by(provisioning_tokens.c.created_at.desc(), provisioning_tokens.c.id)
        )
        return [_token(row) for row in conn.execute(query.with_for_update() if lock else query)]

    def _fetch(self, conn: sa.Connection, token_id: str, *, lock: bool = False) -> ProvisioningToken:
        query = sa.select(provisioning_tokens).where(provisioning_tokens.c.id == token_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError(_LABEL, token_id)
        return _token(row)

    def _revoke(self, conn: sa.Connection, before: ProvisioningToken, actor: str, now: datetime) -> ProvisioningToken:
        conn.execute(provisioning_tokens.update().where(provisioning_tokens.c.id == before.id).values(revoked_at=now))
        after = self._fetch(conn, before.id)
        self._audit(conn, AuditAction.UPDATE, before, after, actor, now)
        return after

    @staticmethod
    def _audit(  # noqa: PLR0917 - one call shape, used three times in this module
        conn: sa.Connection,
        action: AuditAction,
        before: ProvisioningToken | None,
        after: ProvisioningToken,
        actor: str,
        at: datetime,
    ) -> None:
        audit.record_change(
            conn,
            at=at,
            actor=actor,
            entity=Entity.PROVISIONING_TOKEN,
            entity_id=after.id,
            action=action,
            before=before.snapshot() if before is not None else None,
            after=after.snapshot(),
        )
