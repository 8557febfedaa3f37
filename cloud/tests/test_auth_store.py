"""People and API keys in the registry database, on SQLite and on PostgreSQL (the ``postgis``
fixture's real server), and the pieces they are made of: tokens, keys, the rate limiter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from misto.cloud.auth import keys
from misto.cloud.auth.errors import AuthError, Refusal
from misto.cloud.auth.passwords import verify_password
from misto.cloud.auth.ratelimit import RateLimiter
from misto.cloud.auth.roles import Role
from misto.cloud.auth.store import KEY_ENTITY, USER_ENTITY, AuthStore
from misto.cloud.auth.tokens import TokenCodec
from misto.cloud.registry.errors import AlreadyExistsError, InvalidFieldError, NotFoundError, StaleVersionError
from misto.cloud.registry.sql import SqlRegistry

PASSWORD = "correct horse battery staple"
ACTOR = "user:admin"


@pytest.fixture(params=["sqlite", "postgis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuthStore]:
    url = (
        f"sqlite:///{tmp_path / 'registry.db'}" if request.param == "sqlite" else request.getfixturevalue("postgis").url
    )
    async with await SqlRegistry.open(url) as registry:
        yield AuthStore(registry)


async def test_users_are_created_changed_and_removed(store: AuthStore) -> None:
    olena = await store.create_user(
        "olena", display_name="Olena K.", role=Role.OPERATOR, password=PASSWORD, actor=ACTOR
    )
    assert (olena.role, olena.disabled, olena.version, olena.last_login_at) == (Role.OPERATOR, False, 1, None)
    with pytest.raises(AlreadyExistsError):
        await store.create_user("olena", display_name="x", role=Role.CITIZEN, password=PASSWORD, actor=ACTOR)
    login = await store.login("olena")
    assert login is not None
    assert login.password_hash.startswith("$argon2id$")
    assert verify_password(PASSWORD, login.password_hash)
    assert PASSWORD not in repr(login)
    assert await store.login("nobody") is None
    changed = await store.update_user("olena", role=Role.TECHNICIAN, disabled=True, actor=ACTOR, version=1)
    assert (changed.role, changed.disabled, changed.version) == (Role.TECHNICIAN, True, 2)
    with pytest.raises(StaleVersionError):
        await store.update_user("olena", display_name="Olena", actor=ACTOR, version=1)
    await store.record_login("olena")
    assert (await store.get_user("olena")).last_login_at is not None
    await store.create_user("andriy", display_name="Andriy", role=Role.CITIZEN, password=PASSWORD, actor=ACTOR)
    assert [u.username for u in await store.users()] == ["andriy", "olena"]
    await store.delete_user("andriy", actor=ACTOR)
    with pytest.raises(NotFoundError):
        await store.get_user("andriy")
    history = await store.changes(USER_ENTITY, "olena")
    assert [c.action for c in history] == ["update", "create"]
    assert history[0].before is not None
    assert history[0].after is not None
    assert (history[0].before["role"], history[0].after["role"]) == ("operator", "technician")
    assert all("password_hash" not in (c.after or {}) for c in history)


async def test_bad_users_are_refused_naming_the_field(store: AuthStore) -> None:
    cases = [
        ("Olena", "Olena", PASSWORD, "username"),
        ("olena", "", PASSWORD, "display_name"),
        ("olena", "Olena", "too short", "password"),
        ("olena", "Olena", "aaaaaaaaaaaaaaaa", "password"),
    ]
    for username, name, password, field in cases:
        with pytest.raises(InvalidFieldError) as caught:
            await store.create_user(username, display_name=name, role=Role.CITIZEN, password=password, actor=ACTOR)
        assert caught.value.field == field
        assert password not in str(caught.value) or field != "password"
    with pytest.raises(InvalidFieldError, match="actor"):
        await store.create_user("olena", display_name="Olena", role=Role.CITIZEN, password=PASSWORD, actor="")


async def test_api_keys_keep_only_the_hash_of_their_secret(store: AuthStore) -> None:
    issued = await store.create_key(
        name="open data", organisation="KSU", role=Role.PARTNER, rate_limit=120, actor=ACTOR
    )
    parts = keys.parse_key(issued.key)
    assert parts is not None
    assert parts.key_id == issued.api_key.id
    assert issued.key not in repr(issued)
    found = await store.key_check(parts.key_id)
    assert found is not None
    assert keys.secret_matches(parts.secret, found.secret_hash)
    assert not keys.secret_matches(parts.secret[:-1] + "x", found.secret_hash)
    assert await store.key_check("000000000000") is None
    other = await store.create_key(name="ops", organisation="City", role=Role.OPERATOR, rate_limit=60, actor=ACTOR)
    assert [k.id for k in await store.keys(organisation="KSU")] == [issued.api_key.id]
    assert len(await store.keys()) == 2
    revoked = await store.revoke_key(other.api_key.id, actor=ACTOR)
    assert revoked.revoked
    assert (await store.revoke_key(other.api_key.id, actor=ACTOR)).revoked_at == revoked.revoked_at
    with pytest.raises(InvalidFieldError, match="rate_limit"):
        await store.create_key(name="x", organisation="y", role=Role.PARTNER, rate_limit=0, actor=ACTOR)
    history = await store.changes(KEY_ENTITY, other.api_key.id)
    assert [c.action for c in history] == ["update", "create"]
    text = repr([c.before for c in history] + [c.after for c in history])
    assert parts.secret not in text
    assert found.secret_hash not in text


def test_tokens_carry_their_claims_and_expire_on_the_codec_clock() -> None:
    now = [1_800_000_000.0]
    codec = TokenCodec("a-test-secret-of-at-least-32-characters", lifetime_s=60, clock=lambda: now[0])
    issued = codec.issue("olena", Role.TECHNICIAN)
    assert codec.read(issued.token) == issued.claims
    other = TokenCodec("another-secret-of-at-least-32-characters", lifetime_s=60, clock=lambda: now[0])
    with pytest.raises(AuthError) as caught:
        other.read(issued.token)
    assert caught.value.refusal is Refusal.INVALID
    now[0] += 60
    with pytest.raises(AuthError) as caught:
        codec.read(issued.token)
    assert caught.value.refusal is Refusal.EXPIRED
    with pytest.raises(ValueError, match="32"):
        TokenCodec("short", lifetime_s=60)


def test_keys_have_one_recognisable_form() -> None:
    parts, key = keys.new_key()
    assert keys.parse_key(key) == parts
    assert key.startswith("mst_")
    assert len(key) == len("mst_") + 12 + 1 + 43
    for bad in ("mst_", "mst_XYZ_abc", key + "x", key.replace("mst_", "mts_")):
        assert keys.parse_key(bad) is None


def test_the_token_bucket_refills_at_the_rate_of_its_limit() -> None:
    now = [0.0]
    limiter = RateLimiter(lambda: now[0])
    assert [limiter.take("k", 2) for _ in range(3)] == [None, None, 30]
    now[0] += 29.9
    assert limiter.take("k", 2) == 1
    now[0] += 0.1
    assert limiter.take("k", 2) is None
    assert limiter.refused == {"k": 2}
    now[0] += 3600  # a quiet hour refills to the burst, not beyond
    assert [limiter.take("k", 2) for _ in range(3)] == [None, None, 30]
