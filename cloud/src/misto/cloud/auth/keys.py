"""API keys for machines: ``mst_<id>_<secret>``, where ``id`` is 12 hex characters that name the
key (in logs, audit entries and the admin API) and ``secret`` is 32 random bytes, base64url.

The registry keeps only the SHA-256 of the secret. Why a fast hash rather than Argon2, as for
passwords: a password is chosen by a person and may be guessed from a dictionary, so each guess
must be expensive; a key's secret is 256 random bits that no one can guess however cheap each
try is, so a slow hash would only cost CPU on every request the key makes (and a key is checked
on every request, a password only at sign-in)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

PREFIX = "mst"
ID_BYTES = 6
SECRET_BYTES = 32
_KEY = re.compile(r"^mst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class KeyParts:
    key_id: str
    secret: str = field(repr=False)


def looks_like_key(credential: str) -> bool:
    return credential.startswith(f"{PREFIX}_")


def new_key() -> tuple[KeyParts, str]:
    """A new key's parts and the key as handed to its owner (once)."""
    parts = KeyParts(secrets.token_hex(ID_BYTES), secrets.token_urlsafe(SECRET_BYTES))
    return parts, f"{PREFIX}_{parts.key_id}_{parts.secret}"


def parse_key(key: str) -> KeyParts | None:
    """The id and secret of a well-formed key, or None."""
    match = _KEY.match(key)
    return KeyParts(match[1], match[2]) if match else None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)
