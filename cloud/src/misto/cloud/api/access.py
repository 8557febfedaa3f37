"""Who may call each endpoint: ``dependencies=[allow(Role.OPERATOR, Role.ADMIN)]`` or, to know
the caller, ``principal: Annotated[Principal, allow(...)]``; public endpoints declare
``dependencies=[PUBLIC]`` (the caller, if any, is ``viewer: Annotated[Principal | None, PUBLIC]``).

401 without credentials, 403 with credentials of a role not admitted."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from misto.cloud.api.deps import StateDep
from misto.cloud.auth.roles import Principal, Role

_bearer = HTTPBearer(auto_error=False, description="A bearer token: the operator token, a JWT or an API key")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def identify(state: StateDep, credentials: Credentials) -> Principal | None:
    """The caller, or None without credentials; 401 for credentials that prove no one."""
    if credentials is None:
        return None
    token = state.operator_token
    if token is not None and hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        return Principal("token:operator", Role.ADMIN)
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "invalid or expired credentials", headers={"WWW-Authenticate": "Bearer"}
    )


Caller = Annotated[Principal | None, Depends(identify)]
PUBLIC: Any = Depends(identify)


def allow(*roles: Role) -> Any:
    """A dependency admitting callers of ``roles`` only."""
    admitted = frozenset(roles)

    def check(caller: Caller) -> Principal:
        if caller is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "credentials required: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if caller.role not in admitted:
            names = ", ".join(sorted(role.value for role in admitted))
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"{caller.role.value} may not do this (needs {names})")
        return caller

    check.admitted = admitted  # type: ignore[attr-defined]
    return Depends(check)
