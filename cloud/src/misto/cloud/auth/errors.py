"""Why a caller was refused: each refusal names its HTTP answer, so the API maps it without a table."""

from __future__ import annotations

from enum import IntEnum


class Refusal(IntEnum):
    """The HTTP status of a refusal."""

    EXPIRED = 401  # a token that was good: sign in again
    INVALID = 403  # credentials that prove no one (unknown, tampered, revoked, disabled)
    RATE_LIMITED = 429  # an API key over its requests per minute
    UNAVAILABLE = 503  # the registry database (people and keys) is not open or not reachable


class AuthError(Exception):
    """The credentials were refused; ``message`` never repeats a secret."""

    def __init__(self, refusal: Refusal, message: str, *, retry_after_s: int | None = None) -> None:
        self.refusal = refusal
        self.message = message
        self.retry_after_s = retry_after_s
        super().__init__(message)
