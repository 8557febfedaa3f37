"""What the auth tests share: an app over a real SQLite registry with clocks the test drives, and
people of every role signed in through the API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from misto.cloud.api import create_app
from misto.cloud.api.state import ApiState
from misto.cloud.auth.authenticator import Authenticator, Clocks
from misto.cloud.auth.roles import Role
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import load_settings

TOKEN = "operator-token-for-auth-tests-0123456789"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
JWT_SECRET = "jwt-secret-for-auth-tests-0123456789abcdef"
PASSWORD = "correct horse battery staple"
PEOPLE = (Role.ADMIN, Role.OPERATOR, Role.TECHNICIAN, Role.CITIZEN)


@dataclass
class FakeClock:
    """Driven by the test: tokens, the registry (password changes) and the rate limits."""

    wall: float = field(default_factory=time.time)
    mono: float = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall, UTC)

    def clocks(self) -> Clocks:
        return Clocks(wall=lambda: self.wall, monotonic=lambda: self.mono)


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    headers: dict[Role, dict[str, str]] = field(default_factory=dict)

    @property
    def auth(self) -> Authenticator:
        authenticator: Authenticator = self.app.state.auth
        return authenticator

    async def add_user(self, username: str, role: Role, password: str = PASSWORD) -> None:
        body = {"username": username, "display_name": username.title(), "role": role.value, "password": password}
        response = await self.client.post("/api/v1/auth/users", json=body, headers=OPERATOR)
        assert response.status_code == 201, response.text

    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post("/api/v1/auth/token", data={"username": username, "password": password})

    async def bearer(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        response = await self.sign_in(username, password)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def new_key(self, role: Role = Role.PARTNER, rate_limit: int = 60, **extra: Any) -> dict[str, Any]:
        body = {"name": "open data", "organisation": "Kherson University", "role": role.value, "rate_limit": rate_limit}
        response = await self.client.post("/api/v1/auth/api-keys", json={**body, **extra}, headers=OPERATOR)
        assert response.status_code == 201, response.text
        issued: dict[str, Any] = response.json()
        return issued


@asynccontextmanager
async def auth_api(tmp_path: Path, *, everyone: bool = False, **api: Any) -> AsyncIterator[Api]:
    """The app (store, control and registry beside ``tmp_path``) with driven clocks; with
    ``everyone``, a signed-in person of each role and a partner's API key in ``headers``."""
    settings = load_settings(
        overrides={
            "api": {"operator_token": TOKEN, "jwt_secret": JWT_SECRET, **api},
            "store": {"path": str(tmp_path / "misto.db")},
        }
    )
    clock = FakeClock()
    registry = await SqlRegistry.open(settings.registry.database_url(settings.store), clock=clock.now)
    app = create_app(settings, registry=registry)
    state: ApiState = app.state.misto
    app.state.auth = Authenticator.from_settings(settings.api, lambda: state.registry, clocks=clock.clocks())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            found = Api(app, client, clock)
            if everyone:
                for role in PEOPLE:
                    await found.add_user(f"{role.value}-1", role)
                    found.headers[role] = await found.bearer(f"{role.value}-1")
                key = await found.new_key(Role.PARTNER, rate_limit=100_000)
                found.headers[Role.PARTNER] = {"Authorization": f"Bearer {key['key']}"}
            yield found
    finally:
        await registry.close()
