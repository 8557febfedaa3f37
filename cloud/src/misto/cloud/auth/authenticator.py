"""Who a bearer credential proves, in the order the API tries them:

1. the bootstrap operator token (``api.operator_token``): the first admin, before any person exists;
2. a JWT issued by ``POST /api/v1/auth/token`` to a person (the user must still exist, be enabled
   and not have changed their password since; the role is read from the registry, not the token);
3. an API key ``mst_<id>_<secret>`` (not revoked), then its per-key rate limit.

The kind of credential is told by its shape (a key starts ``mst_``, a JWT has two dots), so a
refusal says what was wrong. Sign-in (:meth:`Authenticator.login`) answers the same for an unknown
user, a wrong password and a disabled account, and takes as long for each (an unknown user is
verified against a dummy Argon2 hash)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from misto.cloud.auth import keys
from misto.cloud.auth.errors import AuthError, Refusal
from misto.cloud.auth.models import User
from misto.cloud.auth.passwords import dummy_hash, verify_password
from misto.cloud.auth.ratelimit import RateLimiter
from misto.cloud.auth.roles import Principal, Role
from misto.cloud.auth.store import AuthStore
from misto.cloud.auth.tokens import IssuedToken, TokenCodec, looks_like_jwt
from misto.cloud.registry.errors import RegistryClosedError, RegistryUnavailableError
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import ApiSettings

log = logging.getLogger(__name__)
OPERATOR_SUBJECT = "operator"  # as the audit log named the operator token before people existed
#: Sign-in attempts per username per minute (each API process), against password guessing.
LOGIN_ATTEMPTS_PER_MINUTE = 10


@dataclass(frozen=True, slots=True)
class Clocks:
    """Wall time for tokens (seconds since the epoch) and monotonic time for rate limits."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


class Authenticator:
    def __init__(
        self,
        *,
        operator_token: str | None,
        codec: TokenCodec,
        registry_of: Callable[[], object | None],
        clocks: Clocks | None = None,
    ) -> None:
        self.operator_token = operator_token
        self.codec = codec
        self._registry_of = registry_of
        self.limiter = RateLimiter((clocks or Clocks()).monotonic)
        self._dummy_hash: str | None = None

    @classmethod
    def from_settings(
        cls, api: ApiSettings, registry_of: Callable[[], object | None], *, clocks: Clocks | None = None
    ) -> Authenticator:
        secret = api.jwt_secret_value()
        if secret is None:
            log.warning(
                "api.jwt_secret is not set: signing sign-in tokens with a random secret of this process; "
                "they stop working when it restarts (and other API processes refuse them)"
            )
            secret = secrets.token_urlsafe(48)
        clocks = clocks or Clocks()
        codec = TokenCodec(secret, lifetime_s=api.jwt_expiry_minutes * 60, clock=clocks.wall)
        return cls(operator_token=api.operator_token_value(), codec=codec, registry_of=registry_of, clocks=clocks)

    def store(self) -> AuthStore:
        """The users and keys of the registry; UNAVAILABLE when it is not open."""
        registry = self._registry_of()
        if not isinstance(registry, SqlRegistry):
            raise AuthError(Refusal.UNAVAILABLE, "people and API keys need the registry database, which is not open")
        return AuthStore(registry)

    # --- each request -----------------------------------------------------------------------

    async def identify(self, credential: str) -> Principal:
        """The caller a bearer credential proves; :class:`AuthError` otherwise."""
        try:
            if keys.looks_like_key(credential):
                return await self._key(credential)
            if looks_like_jwt(credential):
                return await self._person(credential)
        except (RegistryUnavailableError, RegistryClosedError) as exc:
            raise AuthError(Refusal.UNAVAILABLE, str(exc), retry_after_s=5) from None
        if self.operator_token is None:
            raise AuthError(
                Refusal.INVALID, "invalid operator token (operator endpoints are disabled: set api.operator_token)"
            )
        if hmac.compare_digest(credential.encode(), self.operator_token.encode()):
            return Principal(OPERATOR_SUBJECT, Role.ADMIN)
        raise AuthError(Refusal.INVALID, "invalid operator token")

    async def _person(self, token: str) -> Principal:
        claims = self.codec.read(token)
        login = await self.store().login(claims.username)
        if login is None or login.user.disabled:
            raise AuthError(Refusal.INVALID, "invalid token: the account is disabled or gone")
        if claims.issued_at < int(login.user.password_changed_at.timestamp()):
            raise AuthError(Refusal.EXPIRED, "the token predates a password change: sign in again")
        return Principal(login.user.subject, login.user.role)

    async def _key(self, credential: str) -> Principal:
        parts = keys.parse_key(credential)
        if parts is None:
            raise AuthError(Refusal.INVALID, "invalid API key: expected mst_<12 hex>_<43 base64url characters>")
        found = await self.store().key_check(parts.key_id)
        if found is None or not keys.secret_matches(parts.secret, found.secret_hash):
            raise AuthError(Refusal.INVALID, "invalid API key")
        api_key = found.api_key
        if api_key.revoked:
            raise AuthError(Refusal.INVALID, f"API key {api_key.id} is revoked")
        wait = self.limiter.take(api_key.subject, api_key.rate_limit)
        if wait is not None:
            raise AuthError(
                Refusal.RATE_LIMITED,
                f"API key {api_key.id}: over {api_key.rate_limit} requests per minute; retry in {wait} s",
                retry_after_s=wait,
            )
        return Principal(api_key.subject, api_key.role)

    # --- sign-in ----------------------------------------------------------------------------

    async def login(self, username: str, password: str) -> tuple[User, IssuedToken]:
        """A token for a person; INVALID alike for an unknown user, a wrong password or a
        disabled account; RATE_LIMITED after too many attempts for one username."""
        wait = self.limiter.take(f"login:{username}", LOGIN_ATTEMPTS_PER_MINUTE)
        if wait is not None:
            raise AuthError(Refusal.RATE_LIMITED, f"too many sign-in attempts; retry in {wait} s", retry_after_s=wait)
        store = self.store()
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(dummy_hash)
        try:
            found = await store.login(username)
        except (RegistryUnavailableError, RegistryClosedError) as exc:
            raise AuthError(Refusal.UNAVAILABLE, str(exc), retry_after_s=5) from None
        if found is None:
            await asyncio.to_thread(verify_password, password, self._dummy_hash)
            raise AuthError(Refusal.INVALID, "wrong username or password")
        if not await asyncio.to_thread(verify_password, password, found.password_hash) or found.user.disabled:
            raise AuthError(Refusal.INVALID, "wrong username or password")
        await store.record_login(username)
        return found.user, self.codec.issue(username, found.user.role)
