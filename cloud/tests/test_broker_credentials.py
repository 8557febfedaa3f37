"""Broker credentials in the registry on SQLite and PostGIS (issue, rotate, revoke, audit, which
accounts the broker gets), the ``$7$`` hash checked against ``mosquitto_passwd`` in both
directions, the ACL file's text and the atomic write. The real broker: test_broker_access.py."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from misto.cloud.registry.credentials import (
    AccountRole,
    BrokerCredentials,
    CredentialError,
    PasswordEntry,
    hash_secret,
    verify_secret,
)
from misto.cloud.registry.errors import AlreadyExistsError, InvalidFieldError, NotFoundError, StaleVersionError
from misto.cloud.registry.models import Entity, GatewayCreate, GatewayUpdate, Lifecycle
from misto.cloud.registry.mosquitto_files import BrokerFilesError, render_acl_file, write_atomically
from misto.cloud.registry.sql import SqlRegistry
from tests.fixtures.mosquitto import find_binary

OPERATOR = "operator:test"
BACKENDS = ["sqlite", "postgis"]


@pytest.fixture(params=BACKENDS)
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlRegistry]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgis").url
    async with await SqlRegistry.open(url) as opened:
        yield opened


async def add_gateway(registry: SqlRegistry, gateway_id: str, status: Lifecycle = Lifecycle.ACTIVE) -> None:
    await registry.create_gateway(
        GatewayCreate(id=gateway_id, name=gateway_id, organisation="City", status=status), actor=OPERATOR
    )


# --- the hash format ---------------------------------------------------------------------------


def test_hash_is_mosquitto_passwd_format(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    subprocess.run([find_binary("mosquitto_passwd"), "-b", str(passwd), "alice", "s3cret é"], check=True)
    theirs = passwd.read_text(encoding="utf-8").strip().split(":", 1)[1]
    ours = hash_secret("s3cret é")
    assert theirs.split("$")[:3] == ours.split("$")[:3] == ["", "7", "101"]
    assert [len(part) for part in theirs.split("$")[3:]] == [len(part) for part in ours.split("$")[3:]] == [16, 88]
    assert verify_secret("s3cret é", theirs)
    assert not verify_secret("s3cret", theirs)
    assert verify_secret("s3cret é", ours)
    with pytest.raises(ValueError, match="password_hash"):
        verify_secret("x", "$6$abc$def")


# --- credentials in the registry ---------------------------------------------------------------


async def test_issue_rotate_revoke_reissue(registry: SqlRegistry) -> None:
    creds = BrokerCredentials(registry)
    with pytest.raises(NotFoundError, match="gateway 'gw-a' not found"):
        await creds.issue_gateway("gw-a", actor=OPERATOR)
    await add_gateway(registry, "gw-a")
    issued = await creds.issue_gateway("gw-a", actor=OPERATOR)
    assert issued.secret not in repr(issued)
    assert (issued.account.username, issued.account.role, issued.account.gateway_id) == (
        "gw-a",
        AccountRole.GATEWAY,
        "gw-a",
    )
    [entry] = await creds.password_entries()
    assert verify_secret(issued.secret, entry.password_hash)
    with pytest.raises(AlreadyExistsError, match="broker account 'gw-a' already exists"):
        await creds.issue_gateway("gw-a", actor=OPERATOR)

    rotated = await creds.rotate("gw-a", actor=OPERATOR, version=1)
    assert rotated.account.version == 2
    [entry] = await creds.password_entries()
    assert verify_secret(rotated.secret, entry.password_hash)
    assert not verify_secret(issued.secret, entry.password_hash)
    with pytest.raises(StaleVersionError):
        await creds.revoke("gw-a", actor=OPERATOR, version=1)

    revoked = await creds.revoke("gw-a", actor=OPERATOR)
    assert revoked.revoked
    assert revoked.version == 3
    assert await creds.password_entries() == []
    with pytest.raises(CredentialError, match="'gw-a': is already revoked"):
        await creds.revoke("gw-a", actor=OPERATOR)
    with pytest.raises(CredentialError, match="'gw-a': is revoked"):
        await creds.rotate("gw-a", actor=OPERATOR)

    again = await creds.issue_gateway("gw-a", actor=OPERATOR)
    assert not again.account.revoked
    assert again.account.version == 4
    [entry] = await creds.password_entries()
    assert verify_secret(again.secret, entry.password_hash)

    history = await registry.audit(Entity.BROKER_ACCOUNT, "gw-a")
    assert [e.action.value for e in history] == ["update", "update", "update", "create"]
    assert all(e.actor == OPERATOR for e in history)
    assert history[1].after is not None
    assert history[1].after["revoked_at"] is not None
    for e in history:  # neither the secret nor its hash ever reaches the audit log
        assert "password_hash" not in (e.after or {})
        assert "$7$" not in repr(e)


async def test_services_and_which_accounts_the_broker_gets(registry: SqlRegistry) -> None:
    creds = BrokerCredentials(registry)
    for gw, status in [("gw-a", Lifecycle.ACTIVE), ("gw-m", Lifecycle.MAINTENANCE), ("gw-n", Lifecycle.ACTIVE)]:
        await add_gateway(registry, gw, status)
    await creds.issue_gateway("gw-a", actor=OPERATOR)
    await creds.issue_gateway("gw-m", actor=OPERATOR)  # not active: no access
    await creds.issue_service("ingester", AccountRole.INGESTER, actor=OPERATOR)
    await creds.issue_service("admin", AccountRole.ADMIN, actor=OPERATOR)
    with pytest.raises(InvalidFieldError, match="role: 'gateway' is not a service role"):
        await creds.issue_service("svc", AccountRole.GATEWAY, actor=OPERATOR)
    with pytest.raises(InvalidFieldError, match="username: 'Bad:name'"):
        await creds.issue_service("Bad:name", AccountRole.ADMIN, actor=OPERATOR)
    with pytest.raises(InvalidFieldError, match="actor"):
        await creds.issue_service("svc", AccountRole.ADMIN, actor="")
    await add_gateway(registry, "ingester")  # a gateway id taken by a service account
    with pytest.raises(AlreadyExistsError, match="broker account 'ingester'"):
        await creds.issue_gateway("ingester", actor=OPERATOR)

    entries = await creds.password_entries()
    assert [(e.username, e.role) for e in entries] == [
        ("admin", AccountRole.ADMIN),
        ("gw-a", AccountRole.GATEWAY),
        ("ingester", AccountRole.INGESTER),
    ]
    assert "$7$" not in repr(entries)

    gw_m = await registry.get_gateway("gw-m")
    await registry.update_gateway("gw-m", GatewayUpdate(status=Lifecycle.ACTIVE), version=gw_m.version, actor=OPERATOR)
    assert "gw-m" in [e.username for e in await creds.password_entries()]
    await registry.delete_gateway("gw-a", actor=OPERATOR)  # its account goes with it
    assert [a.username for a in await creds.accounts()] == ["admin", "gw-m", "ingester"]
    with pytest.raises(NotFoundError, match="broker account 'gw-a' not found"):
        await creds.get("gw-a")


def test_acl_file_text() -> None:
    text = render_acl_file(
        [PasswordEntry("gw-a", AccountRole.GATEWAY, "h"), PasswordEntry("ingester", AccountRole.INGESTER, "h")]
    )
    body = text.split("\n", 1)[1]
    assert body == (
        "\n# gateway\nuser gw-a\n"
        "topic write misto/v1/gw-a/telemetry\ntopic write misto/v1/gw-a/status\n"
        "topic write misto/v1/gw-a/health\ntopic write misto/v1/gw-a/ack\n"
        "topic read misto/v1/gw-a/config\ntopic read misto/v1/gw-a/cmd\n"
        "\n# ingester\nuser ingester\n"
        "topic read misto/v1/+/telemetry\ntopic read misto/v1/+/status\n"
        "topic read misto/v1/+/health\ntopic read misto/v1/+/ack\n"
        "topic write misto/v1/+/config\ntopic write misto/v1/+/cmd\n"
    )


def test_atomic_write(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o644)
    write_atomically(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd"]  # no temporary file left
    with pytest.raises(BrokerFilesError, match="missing/passwd: cannot create a temporary file"):
        write_atomically(tmp_path / "missing" / "passwd", "x\n")
