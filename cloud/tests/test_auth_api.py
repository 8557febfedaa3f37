"""Sign-in, tokens and API keys through the HTTP API over a real SQLite registry, with the clocks
driven by the test (token expiry, rate-limit refill): no sleeps."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest

from cloud.tests.auth_support import JWT_SECRET, OPERATOR, PASSWORD, auth_api
from misto.cloud.auth.roles import Role
from misto.cloud.auth.store import KEY_ENTITY, USER_ENTITY


async def test_sign_in_gives_a_token_that_proves_the_person(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        await api.add_user("olena", Role.OPERATOR)
        signed = await api.sign_in("olena")
        assert signed.status_code == 200, signed.text
        body = signed.json()
        assert (body["token_type"], body["expires_in"], body["role"]) == ("bearer", 30 * 60, "operator")
        assert signed.headers["cache-control"] == "no-store"
        claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False})
        assert set(claims) == {"sub", "role", "iat", "exp", "jti"}
        assert (claims["sub"], claims["role"], claims["exp"] - claims["iat"]) == ("olena", "operator", 1800)
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        me = await api.client.get("/api/v1/auth/me", headers=headers)
        assert me.json() == {"subject": "user:olena", "role": "operator", "display_name": "Olena", "organisation": None}
        users = (await api.client.get("/api/v1/auth/users", headers=OPERATOR)).json()
        assert users[0]["last_login_at"] is not None
        assert all("password" not in key or key == "password_changed_at" for key in users[0])


async def test_unknown_user_wrong_password_and_disabled_answer_alike(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        await api.add_user("olena", Role.OPERATOR)
        await api.add_user("petro", Role.TECHNICIAN)
        patched = await api.client.patch("/api/v1/auth/users/petro", json={"disabled": True}, headers=OPERATOR)
        assert patched.json()["disabled"] is True
        answers = [
            await api.sign_in("nobody"),
            await api.sign_in("olena", "a wrong password, long enough"),
            await api.sign_in("petro"),
        ]
        assert {(a.status_code, a.json()["detail"]) for a in answers} == {(401, "wrong username or password")}
        assert all(a.headers["www-authenticate"] == "Bearer" for a in answers)
        assert (await api.sign_in("olena")).status_code == 200


async def test_sign_in_attempts_are_limited_per_username(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        await api.add_user("olena", Role.OPERATOR)
        for _ in range(10):
            assert (await api.sign_in("olena", "guess number one two")).status_code == 401
        refused = await api.sign_in("olena")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        api.clock.advance(60)
        assert (await api.sign_in("olena")).status_code == 200


async def test_tokens_expire_and_a_tampered_token_is_refused(tmp_path: Path) -> None:
    async with auth_api(tmp_path, jwt_expiry_minutes=5) as api:
        await api.add_user("olena", Role.ADMIN)
        headers = await api.bearer("olena")
        assert (await api.client.get("/api/v1/auth/users", headers=headers)).status_code == 200
        token = headers["Authorization"].removeprefix("Bearer ")
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "someone"}).encode()).rstrip(b"=").decode()
        tampered = await api.client.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {header}.{forged}.{signature}"}
        )
        assert (tampered.status_code, tampered.json()["detail"]) == (
            401,
            "invalid token: Signature verification failed",
        )
        other_secret = jwt.encode({**claims, "role": "admin"}, "another-secret-of-at-least-32-characters!", "HS256")
        assert (
            await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other_secret}"})
        ).status_code == 401
        api.clock.advance(5 * 60 - 1)
        assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 200
        api.clock.advance(1)
        expired = await api.client.get("/api/v1/auth/me", headers=headers)
        assert (expired.status_code, expired.json()["detail"]) == (401, "the token has expired: sign in again")
        assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_disabling_changing_the_role_or_the_password_acts_at_once(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        await api.add_user("olena", Role.OPERATOR)
        headers = await api.bearer("olena")
        assert (await api.client.get("/api/v1/dead-letters", headers=headers)).status_code == 200
        await api.client.patch("/api/v1/auth/users/olena", json={"role": "citizen"}, headers=OPERATOR)
        assert (await api.client.get("/api/v1/dead-letters", headers=headers)).status_code == 403
        await api.client.patch("/api/v1/auth/users/olena", json={"disabled": True}, headers=OPERATOR)
        refused = await api.client.get("/api/v1/auth/me", headers=headers)
        assert (refused.status_code, refused.json()["detail"]) == (
            401,
            "invalid token: the account is disabled or gone",
        )
        await api.client.patch("/api/v1/auth/users/olena", json={"disabled": False}, headers=OPERATOR)
        assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 200
        api.clock.advance(2)
        new_password = "another horse, another staple"
        changed = await api.client.patch("/api/v1/auth/users/olena", json={"password": new_password}, headers=OPERATOR)
        assert changed.status_code == 200, changed.text
        assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 401
        assert (await api.sign_in("olena")).status_code == 401
        assert (await api.sign_in("olena", new_password)).status_code == 200
        await api.client.delete("/api/v1/auth/users/olena", headers=OPERATOR)
        assert (await api.sign_in("olena", new_password)).status_code == 401


async def test_api_key_rate_limit_refuses_then_recovers(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        issued = await api.new_key(rate_limit=3)
        assert issued["key"].startswith(f"mst_{issued['id']}_")
        headers = {"Authorization": f"Bearer {issued['key']}"}
        for _ in range(3):
            assert (await api.client.get("/api/v1/registry/devices", headers=headers)).status_code == 200
        refused = await api.client.get("/api/v1/registry/devices", headers=headers)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"  # 3 per minute: one token every 20 s
        assert "3 requests per minute" in refused.json()["detail"]
        assert api.auth.limiter.refused[f"key:{issued['id']}"] == 1
        api.clock.advance(19)
        assert (await api.client.get("/api/v1/registry/devices", headers=headers)).status_code == 429
        api.clock.advance(1)
        assert (await api.client.get("/api/v1/registry/devices", headers=headers)).status_code == 200
        assert api.auth.limiter.refused_total == 2
        metrics = await api.client.get("/metrics", headers=OPERATOR)
        assert "misto_api_rate_limited_total 2.0" in metrics.text
        other = await api.new_key(rate_limit=3)  # each key has its own bucket
        other_headers = {"Authorization": f"Bearer {other['key']}"}
        assert (await api.client.get("/api/v1/registry/devices", headers=other_headers)).status_code == 200


async def test_keys_are_shown_once_and_revoked_keys_refused(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        issued = await api.new_key(Role.OPERATOR)
        headers = {"Authorization": f"Bearer {issued['key']}"}
        me = (await api.client.get("/api/v1/auth/me", headers=headers)).json()
        assert me == {
            "subject": f"key:{issued['id']}",
            "role": "operator",
            "display_name": None,
            "organisation": "Kherson University",
        }
        listing = (await api.client.get("/api/v1/auth/api-keys", headers=OPERATOR)).text
        assert issued["key"] not in listing
        assert issued["key"].split("_", 2)[2] not in listing
        wrong_secret = issued["key"][:-4] + "AAAA"
        assert (
            await api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {wrong_secret}"})
        ).status_code == 401
        malformed = await api.client.get("/api/v1/auth/me", headers={"Authorization": "Bearer mst_nothing"})
        assert malformed.status_code == 401
        assert "expected mst_" in malformed.json()["detail"]
        revoked = await api.client.delete(f"/api/v1/auth/api-keys/{issued['id']}", headers=OPERATOR)
        assert revoked.json()["revoked_at"] is not None
        refused = await api.client.get("/api/v1/auth/me", headers=headers)
        assert (refused.status_code, refused.json()["detail"]) == (401, f"API key {issued['id']} is revoked")
        assert (await api.client.delete("/api/v1/auth/api-keys/000000000000", headers=OPERATOR)).status_code == 404


async def test_admin_changes_are_audited_without_secrets(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        await api.add_user("admin-1", Role.ADMIN)
        admin = await api.bearer("admin-1")
        created = await api.client.post(
            "/api/v1/auth/users",
            json={"username": "petro", "display_name": "Petro", "role": "technician", "password": PASSWORD},
            headers=admin,
        )
        assert created.headers["location"] == "/api/v1/auth/users/petro"
        await api.client.patch("/api/v1/auth/users/petro", json={"password": "a brand new pass phrase"}, headers=admin)
        issued = await api.new_key()
        await api.client.delete(f"/api/v1/auth/api-keys/{issued['id']}", headers=admin)
        store = api.auth.store()
        user_changes = await store.changes(USER_ENTITY, "petro")
        assert [(c.action, c.actor) for c in user_changes] == [("update", "user:admin-1"), ("create", "user:admin-1")]
        key_changes = await store.changes(KEY_ENTITY, issued["id"])
        assert [(c.action, c.actor) for c in key_changes] == [("update", "user:admin-1"), ("create", "operator")]
        text = json.dumps(
            [c.before for c in user_changes + key_changes] + [c.after for c in user_changes + key_changes]
        )
        for secret in (PASSWORD, "a brand new pass phrase", "$argon2", issued["key"], issued["key"].split("_", 2)[2]):
            assert secret not in text
        assert '"password_changed_at"' in text


async def test_admins_cannot_lock_themselves_out_and_bad_input_is_a_422(tmp_path: Path) -> None:
    async with auth_api(tmp_path) as api:
        await api.add_user("admin-1", Role.ADMIN)
        admin = await api.bearer("admin-1")
        for change in ({"disabled": True}, {"role": "operator"}):
            refused = await api.client.patch("/api/v1/auth/users/admin-1", json=change, headers=admin)
            assert refused.status_code == 409
        assert (await api.client.delete("/api/v1/auth/users/admin-1", headers=admin)).status_code == 409
        user: dict[str, object] = {
            "username": "olena",
            "display_name": "Olena",
            "role": "operator",
            "password": PASSWORD,
        }
        cases: list[tuple[dict[str, object], str]] = [
            ({**user, "username": "Olena!"}, "username"),
            ({**user, "password": "short"}, "password"),
            ({**user, "password": "password password"}, "password"),
            ({**user, "role": "mayor"}, "role"),
            ({**user, "extra": 1}, "extra"),
        ]
        for body, field in cases:
            response = await api.client.post("/api/v1/auth/users", json=body, headers=admin)
            assert response.status_code == 422, (body, response.text)
            assert [e["loc"][-1] for e in response.json()["detail"]] == [field], response.text
            assert PASSWORD not in response.text
        assert (await api.client.post("/api/v1/auth/users", json=user, headers=admin)).status_code == 201
        assert (await api.client.post("/api/v1/auth/users", json=user, headers=admin)).status_code == 409
        bad_limit = await api.client.post(
            "/api/v1/auth/api-keys", json={"name": "x", "organisation": "y", "rate_limit": 0}, headers=admin
        )
        assert bad_limit.status_code == 422


@pytest.mark.parametrize("secret", ["short-secret-0123456789", "changeme-changeme-changeme-changeme"])
def test_a_weak_jwt_secret_is_a_config_error(secret: str) -> None:
    from misto.cloud.errors import ConfigError
    from misto.cloud.settings import load_settings

    with pytest.raises(ConfigError, match="jwt_secret"):
        load_settings(overrides={"api": {"jwt_secret": secret}})


async def test_without_a_jwt_secret_tokens_are_signed_per_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with auth_api(tmp_path, jwt_secret=None) as api:
        await api.add_user("olena", Role.OPERATOR)
        headers = await api.bearer("olena")
        assert (await api.client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert "api.jwt_secret is not set" in caplog.text
    async with auth_api(tmp_path, jwt_secret=None) as restarted:  # the same registry, a new process secret
        assert (await restarted.client.get("/api/v1/auth/me", headers=headers)).status_code == 401
