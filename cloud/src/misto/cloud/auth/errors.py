"""Why a caller was refused: each refusal names its HTTP answer (:attr:`Refusal.status`)."""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """Why credentials were refused; :attr:`status` is the HTTP answer."""

    EXPIRED = "expired"  # a token that was good: sign in again
    INVALID = "invalid"  # credentials that prove no one (unknown, tampered, revoked, disabled)
    RATE_LIMITED = "rate_limited"  # an API key over its requests per minute
    UNAVAILABLE = "unavailable"  # the registry database (people and keys) is not open or not reachable

    @property
    def status(self) -> int:
        """401 for credentials that prove no one (RFC 6750 ``invalid_token``), 429, 503."""
        return _STATUS[self]


_STATUS = {Refusal.EXPIRED: 401, Refusal.INVALID: 401, Refusal.RATE_LIMITED: 429, Refusal.UNAVAILABLE: 503}


class AuthError(Exception):
    """The credentials were refused; ``message`` never repeats a secret."""

    def __init__(self, refusal: Refusal, message: str, *, retry_after_s: int | None = None) -> None:
        self.refusal = refusal
        self.message = message
        self.retry_after_s = retry_after_s
        super().__init__(message)
