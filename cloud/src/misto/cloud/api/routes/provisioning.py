"""Gateway provisioning (docs/provisioning.md):

* ``POST /api/v1/registry/gateways/{gateway}/provisioning-tokens`` (operator, admin, technician):
  a one-time token for a registered gateway, shown once (older unused tokens are revoked);
  ``GET`` lists the gateway's tokens (never the tokens themselves) and ``DELETE .../{token_id}``
  revokes one.
* ``POST /api/v1/provision`` (public, authenticated by the token in the body): the gateway's MQTT
  credentials, issued or rotated (the secret shown once), and what its first configuration needs.
  Refusals: 401 unknown token, 410 expired, used or revoked, 409 gateway not active; failed
  attempts are counted per client address, and an address with ``registry.provisioning.
  max_failures`` failures within ``failure_window_s`` gets 429 until the window has passed.

When the service keeps the broker files (``registry.broker_files``), an exchange rewrites them and
reloads the broker before answering, so the gateway's first connection is accepted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response as StarletteResponse

from misto.cloud.api.access import PUBLIC, allow
from misto.cloud.api.deps import GatewayDep, StateDep
from misto.cloud.api.routes.registry import registry_errors
from misto.cloud.auth.roles import Principal, Role
from misto.cloud.registry.mosquitto_files import BrokerFilesKeeper
from misto.cloud.registry.provisioning import (
    MAX_TOKEN_CHARS,
    Provisioning,
    ProvisioningError,
    ProvisioningToken,
    Refusal,
    TokenState,
)
from misto.cloud.registry.sql import SqlRegistry
from misto.cloud.settings import ProvisioningSettings

log = logging.getLogger(__name__)
router = APIRouter(tags=["provisioning"])
TOKENS = "/api/v1/registry/gateways/{gateway}/provisioning-tokens"
MAX_TRACKED_CLIENTS = 10_000
REGISTRY_PREFIX = "/api/v1/registry/"
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

REFUSAL_STATUS = {
    Refusal.UNKNOWN: status.HTTP_401_UNAUTHORIZED,
    Refusal.EXPIRED: status.HTTP_410_GONE,
    Refusal.USED: status.HTTP_410_GONE,
    Refusal.REVOKED: status.HTTP_410_GONE,
    Refusal.GATEWAY_INACTIVE: status.HTTP_409_CONFLICT,
}
STAFF = (Role.OPERATOR, Role.ADMIN, Role.TECHNICIAN)


class FailureGuard:
    """Failed exchanges per client address in a sliding window, and counts by reason."""

    def __init__(self, max_failures: int, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self.refused: Counter[str] = Counter()  # by Refusal value, and "rate_limited"
        self.provisioned = 0

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        horizon = self._clock() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def check(self, client: str) -> None:
        """429 (with Retry-After) for an address that failed too often lately."""
        times = self._recent(client)
        if len(times) >= self.max_failures:
            self.refused["rate_limited"] += 1
            retry = max(1, int(times[0] + self.window_s - self._clock()) + 1)
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many failed provisioning attempts from {client}: try again in {retry}s",
                headers={"Retry-After": str(retry)},
            )

    def fail(self, client: str, refusal: Refusal) -> None:
        self.refused[refusal.value] += 1
        if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
            del self._failures[next(iter(self._failures))]  # the longest tracked: bounded memory
        self._failures.setdefault(client, deque()).append(self._clock())


def _settings(state: StateDep) -> ProvisioningSettings:
    return state.settings.registry.provisioning


def get_provisioning(state: StateDep) -> Provisioning:
    if not isinstance(state.registry, SqlRegistry):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the registry is not open")
    return Provisioning(state.registry)


def get_guard(request: Request, state: StateDep) -> FailureGuard:
    """The app's guard, made at its first use (kept on ``app.state``, not in this module)."""
    guard: FailureGuard | None = getattr(request.app.state, "provisioning_guard", None)
    if guard is None:
        settings = _settings(state)
        guard = FailureGuard(settings.max_failures, settings.failure_window_s)
        request.app.state.provisioning_guard = guard
    return guard


def broker_files(request: Request) -> BrokerFilesKeeper | None:
    """The service's keeper of the broker files (``registry.broker_files``), if it runs one."""
    keeper: BrokerFilesKeeper | None = getattr(request.app.state, "broker_files", None)
    return keeper


ProvisioningDep = Annotated[Provisioning, Depends(get_provisioning)]
GuardDep = Annotated[FailureGuard, Depends(get_guard)]
TokenId = Annotated[str, Path(max_length=32, description="The token's id (not the token)")]


# --- operators and technicians ----------------------------------------------------------------


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl_s: int | None = Field(
        default=None, ge=60, le=30 * 86400, description="Lifetime; default registry.provisioning.token_ttl_s"
    )


class TokenOut(BaseModel):
    """A token as listed: never the token itself."""

    model_config = ConfigDict(frozen=True)

    id: str
    gateway_id: str
    state: TokenState
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ProvisioningToken, now: datetime) -> TokenOut:
        fields = {name: getattr(token, name) for name in cls.model_fields if name != "state"}
        return cls(state=token.state(now), **fields)


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The one-time token: shown only now; give it to the technician")
    revoked: list[str] = Field(description="Ids of this gateway's older unused tokens, now revoked")


def _now(provisioning: Provisioning) -> datetime:
    return provisioning.now()


@router.post(
    TOKENS,
    response_model=IssuedTokenOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a one-time provisioning token for a registered gateway (shown once)",
    responses={404: {"description": "No such gateway"}},
)
async def create_token(
    *,
    gateway: GatewayDep,
    provisioning: ProvisioningDep,
    principal: Annotated[Principal, allow(*STAFF)],
    state: StateDep,
    response: Response,
    body: TokenRequest | None = None,
) -> IssuedTokenOut:
    ttl_s = body.ttl_s if body is not None and body.ttl_s is not None else _settings(state).token_ttl_s
    with registry_errors():
        issued = await provisioning.create(gateway, actor=principal.subject, ttl=timedelta(seconds=ttl_s))
    response.headers["Cache-Control"] = "no-store"
    out = TokenOut.of(issued.record, _now(provisioning))
    return IssuedTokenOut(**out.model_dump(), token=issued.token, revoked=list(issued.revoked))


@router.get(
    TOKENS,
    response_model=list[TokenOut],
    summary="A gateway's provisioning tokens, newest first (never the tokens themselves)",
    dependencies=[allow(*STAFF)],
)
async def list_tokens(gateway: GatewayDep, provisioning: ProvisioningDep) -> list[TokenOut]:
    with registry_errors("query"):
        tokens = await provisioning.tokens(gateway)
    now = _now(provisioning)
    return [TokenOut.of(token, now) for token in tokens]


@router.delete(
    TOKENS + "/{token_id}",
    response_model=TokenOut,
    summary="Revoke a provisioning token not yet used",
    responses={404: {"description": "No such token"}, 409: {"description": "Already used or revoked"}},
)
async def revoke_token(
    gateway: GatewayDep,
    token_id: TokenId,
    provisioning: ProvisioningDep,
    principal: Annotated[Principal, allow(*STAFF)],
) -> TokenOut:
    with registry_errors():
        found = await provisioning.get(token_id)
        if found.gateway_id != gateway:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"provisioning token {token_id!r} not found")
        try:
            revoked = await provisioning.revoke(token_id, actor=principal.subject)
        except ProvisioningError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return TokenOut.of(revoked, _now(provisioning))


# --- the gateway ------------------------------------------------------------------------------


class ProvisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS, description="The one-time provisioning token")


class MqttCredentials(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str = Field(description="The broker as gateways reach it (registry.provisioning.broker_url)")
    username: str
    password: str = Field(description="The gateway's new secret: shown only now")


class ProvisionedDevice(BaseModel):
    """A device the registry assigns to the gateway; its driver settings (bus, address, unit id)
    are the technician's to add to the configuration."""

    model_config = ConfigDict(frozen=True)

    id: str
    model_id: str
    kind: str


class ProvisionOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    gateway_id: str
    token_id: str
    mqtt: MqttCredentials
    devices: list[ProvisionedDevice]


@router.post(
    "/api/v1/provision",
    response_model=ProvisionOut,
    summary="Exchange a provisioning token for the gateway's MQTT credentials and first configuration",
    dependencies=[PUBLIC],
    responses={
        401: {"description": "Unknown token"},
        409: {"description": "The gateway is not active"},
        410: {"description": "The token expired, was used or was revoked"},
        429: {"description": "Too many failed attempts from this address"},
    },
)
async def provision(
    *,
    body: ProvisionRequest,
    request: Request,
    response: Response,
    provisioning: ProvisioningDep,
    guard: GuardDep,
    state: StateDep,
) -> ProvisionOut:
    client = request.client.host if request.client is not None else "unknown"
    guard.check(client)
    try:
        with registry_errors():
            done = await provisioning.exchange(body.token)
    except ProvisioningError as exc:
        guard.fail(client, exc.refusal)
        log.warning("provisioning refused (%s) for %s: %s", exc.refusal.value, client, exc)
        raise HTTPException(REFUSAL_STATUS[exc.refusal], str(exc)) from None
    guard.provisioned += 1
    log.info("gateway %r provisioned from %s with token %s", done.gateway.id, client, done.token.id)
    keeper = broker_files(request)
    if keeper is not None:
        await keeper.try_sync()  # a failure is logged; the keeper retries, the gateway reconnects
    response.headers["Cache-Control"] = "no-store"
    settings = state.settings
    url = settings.registry.provisioning.broker_url or settings.broker.url
    return ProvisionOut(
        gateway_id=done.gateway.id,
        token_id=done.token.id,
        mqtt=MqttCredentials(url=url, username=done.account.username, password=done.secret),
        devices=[ProvisionedDevice(id=d.id, model_id=d.model_id, kind=d.kind.value) for d in done.devices],
    )


def attach_broker_files(app: FastAPI, keeper: BrokerFilesKeeper | None) -> None:
    """Give the app the service's keeper of the broker files (None: there is none): an exchange
    syncs them before it answers, and every successful change under ``/api/v1/registry`` (a
    gateway deleted or set inactive, an account changed) has them checked at once rather than at
    the keeper's next round."""
    if keeper is None:
        return
    app.state.broker_files = keeper

    @app.middleware("http")
    async def _registry_changed(
        request: Request, call_next: Callable[[Request], Awaitable[StarletteResponse]]
    ) -> StarletteResponse:
        response = await call_next(request)
        if request.method in _CHANGES and request.url.path.startswith(REGISTRY_PREFIX) and response.status_code < 400:
            keeper.changed()
        return response


def guard_counts(app_state: Any) -> dict[str, int]:
    """The provisioning counters of an app (for logs and tests): provisioned and refused by reason."""
    guard: FailureGuard | None = getattr(app_state, "provisioning_guard", None)
    if guard is None:
        return {"provisioned": 0}
    return {"provisioned": guard.provisioned, **guard.refused}
