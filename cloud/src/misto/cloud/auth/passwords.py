"""People's passwords, hashed with Argon2id (pwdlib with argon2-cffi, its default parameters:
64 MiB, 3 passes). Hashing is slow on purpose (tens of milliseconds), so callers run it in a
worker thread, never on the event loop.

Only this module and the embedded broker import pwdlib."""

from __future__ import annotations

import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from misto.cloud.registry.errors import InvalidFieldError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # Argon2 takes any length; this bounds the work a request can ask for
_WEAK = frozenset({"password", "123456", "qwerty", "letmein", "admin", "changeme", "secret"})


def _hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(),))


def check_password(password: str, field: str = "password") -> str:
    """``password`` if it is acceptable; :class:`InvalidFieldError` naming ``field`` otherwise
    (the message never repeats the password)."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidFieldError(field, f"must be {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters")
    if len(set(password)) < 4 or any(weak in password.lower() for weak in _WEAK):
        raise InvalidFieldError(field, "is too easy to guess: use a passphrase of several words")
    return password


def hash_password(password: str) -> str:
    """An Argon2id hash (``$argon2id$v=19$m=65536,t=3,p=4$...``) of a checked password."""
    return _hasher().hash(check_password(password))


def verify_password(password: str, password_hash: str) -> bool:
    """True if ``password`` matches; as slow for a wrong password as for a right one."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    return _hasher().verify(password, password_hash)


def dummy_hash() -> str:
    """A hash of a random password, to verify against when the user does not exist, so that an
    unknown username takes as long to refuse as a wrong password."""
    return _hasher().hash(secrets.token_urlsafe(24))
