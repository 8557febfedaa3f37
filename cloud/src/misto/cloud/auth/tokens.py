"""Access tokens for people: JWTs signed with HS256 by the API process (PyJWT; only this module
imports it). Claims: ``sub`` (the username), ``role``, ``iat``, ``exp`` and ``jti``.

The expiry is checked against the codec's clock (not PyJWT's), so tests can drive time. The role
in a token is informative: the API takes the person's current role from the registry at each
request, so a role change or a disabled account takes effect at once."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from misto.cloud.auth.errors import AuthError, Refusal
from misto.cloud.auth.roles import Role

ALGORITHM = "HS256"
MIN_SECRET_LENGTH = 32  # HS256 keys should be at least as long as the hash (256 bits)
_REQUIRED = ["sub", "role", "iat", "exp", "jti"]


@dataclass(frozen=True, slots=True)
class Claims:
    username: str
    role: Role
    issued_at: int  # seconds since the epoch
    expires_at: int
    token_id: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    claims: Claims
    token: str = field(repr=False)


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2


class TokenCodec:
    """Issues and reads tokens with one secret; ``clock`` gives seconds since the epoch."""

    def __init__(self, secret: str, *, lifetime_s: int, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"secret: must be at least {MIN_SECRET_LENGTH} characters")
        if lifetime_s < 1:
            raise ValueError(f"lifetime_s: {lifetime_s} must be at least 1")
        self._secret = secret
        self.lifetime_s = lifetime_s
        self._clock = clock

    def issue(self, username: str, role: Role) -> IssuedToken:
        now = int(self._clock())
        claims = Claims(username, role, now, now + self.lifetime_s, secrets.token_hex(8))
        payload = {"sub": username, "role": role.value, "iat": now, "exp": claims.expires_at, "jti": claims.token_id}
        return IssuedToken(claims, jwt.encode(payload, self._secret, algorithm=ALGORITHM))

    def read(self, token: str) -> Claims:
        """The claims of a token this codec signed; :class:`AuthError` (EXPIRED or INVALID) otherwise."""
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthError(Refusal.INVALID, f"invalid token: {exc}") from None
        try:
            claims = Claims(
                username=_text(payload, "sub"),
                role=Role(payload["role"]),
                issued_at=int(payload["iat"]),
                expires_at=int(payload["exp"]),
                token_id=_text(payload, "jti"),
            )
        except (ValueError, TypeError) as exc:
            raise AuthError(Refusal.INVALID, f"invalid token: {exc}") from None
        if claims.expires_at <= self._clock():
            raise AuthError(Refusal.EXPIRED, "the token has expired: sign in again")
        return claims


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"claim {name!r} must be a non-empty string")
    return value
