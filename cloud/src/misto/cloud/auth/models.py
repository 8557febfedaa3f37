"""People and API keys as the registry shows them: never a password hash, a key's secret or its hash."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from misto.cloud.auth.roles import Role
from misto.cloud.registry.errors import InvalidFieldError

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)
MAX_TEXT = 200
DEFAULT_RATE_LIMIT = 60  # requests per minute
MAX_RATE_LIMIT = 100_000


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise InvalidFieldError(
            "username", f"{username!r} must be 2-64 characters of a-z, 0-9, '.', '-' or '_', starting with a-z or 0-9"
        )
    return username


def check_text(value: str, field_name: str) -> str:
    if not value.strip() or len(value) > MAX_TEXT or any(ord(ch) < 0x20 for ch in value):
        raise InvalidFieldError(field_name, f"must be 1-{MAX_TEXT} printable characters")
    return value


def check_rate_limit(per_minute: int) -> int:
    if not 1 <= per_minute <= MAX_RATE_LIMIT:
        raise InvalidFieldError(
            "rate_limit", f"{per_minute} must be between 1 and {MAX_RATE_LIMIT} requests per minute"
        )
    return per_minute


@dataclass(frozen=True, slots=True)
class User:
    username: str
    display_name: str
    role: Role
    disabled: bool
    password_changed_at: datetime
    last_login_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def subject(self) -> str:
        return f"user:{self.username}"

    def snapshot(self) -> dict[str, Any]:
        """What the audit log keeps (never the hash)."""
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "disabled": self.disabled,
            "password_changed_at": self.password_changed_at.isoformat(),
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    organisation: str
    role: Role
    rate_limit: int
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def subject(self) -> str:
        return f"key:{self.id}"

    def snapshot(self) -> dict[str, Any]:
        """What the audit log keeps (never the secret or its hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "organisation": self.organisation,
            "role": self.role.value,
            "rate_limit": self.rate_limit,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``key`` is shown once; the registry cannot show it again."""

    api_key: ApiKey
    key: str = field(repr=False)
