"""Who may call each endpoint: ``dependencies=[allow(Role.OPERATOR, Role.ADMIN)]`` or, to know
the caller, ``principal: Annotated[Principal, allow(...)]``; public endpoints declare
``dependencies=[PUBLIC]`` (the caller, if any, is ``viewer: Annotated[Principal | None, PUBLIC]``).

A bearer credential is the bootstrap operator token (an admin), a person's JWT from
``POST /api/v1/auth/token`` or an API key ``mst_<id>_<secret>`` (see
:mod:`misto.cloud.auth.authenticator`). Answers:

* 401 without credentials (also a Basic or other non-Bearer scheme), and, with
  ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750), with credentials that prove no
  one (expired, unknown, tampered, revoked, disabled); a public endpoint refuses bad credentials
  too rather than serving them as public;
* 403 with credentials of a role not admitted;
* 429 with ``Retry-After`` when an API key is over its requests per minute;
* 503 when people or keys cannot be checked because the registry database is not open.

Each check function carries ``admitted`` (the roles) so the role-matrix test and docs/security.md
read the declarations from the app's routes; :data:`PUBLIC` is one object, recognised by identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from misto.cloud.auth.authenticator import Authenticator
from misto.cloud.auth.errors import AuthError, Refusal
from misto.cloud.auth.roles import Principal, Role

_bearer = HTTPBearer(auto_error=False, description="A bearer token: the operator token, a JWT or an API key")

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.ADMIN, Role.OPERATOR, Role.TECHNICIAN})


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.auth
    return authenticator


AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


def refused(error: AuthError) -> HTTPException:
    """An :class:`AuthError` as the HTTP answer its refusal names."""
    headers: dict[str, str] = {}
    if error.refusal is Refusal.EXPIRED or error.refusal is Refusal.INVALID:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    return HTTPException(error.refusal.status, error.message, headers=headers or None)


async def identify(authenticator: AuthenticatorDep, credentials: Credentials) -> Principal | None:
    """The caller, or None without credentials; 401/403/429/503 for credentials that prove no one."""
    if credentials is None:
        return None
    try:
        return await authenticator.identify(credentials.credentials)
    except AuthError as error:
        raise refused(error) from None


Caller = Annotated[Principal | None, Depends(identify)]
PUBLIC: Any = Depends(identify)


def require(caller: Principal | None, admitted: frozenset[Role]) -> Principal:
    """``caller`` if admitted; 401 without one, 403 for another role."""
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


def allow(*roles: Role) -> Any:
    """A dependency admitting callers of ``roles`` only."""
    admitted = frozenset(roles)
    if not admitted:
        raise ValueError("allow() needs at least one role (use PUBLIC for public endpoints)")

    def check(caller: Caller) -> Principal:
        return require(caller, admitted)

    check.admitted = admitted  # type: ignore[attr-defined]
    return Depends(check)


def admitted_roles(call: Callable[..., Any]) -> frozenset[Role] | None:
    """The roles a dependency from :func:`allow` admits (None for any other callable)."""
    found = getattr(call, "admitted", None)
    return found if isinstance(found, frozenset) else None


def declaration(dependant: Dependant) -> frozenset[Role] | None:
    """What a route declares, read from its dependency tree: the roles that every :func:`allow` on
    it admits (their intersection), None for a public route (:data:`PUBLIC` only), or
    :class:`LookupError` when it declares neither."""
    calls: list[Callable[..., Any]] = []
    stack = [dependant]
    while stack:
        current = stack.pop()
        if current.call is not None:
            calls.append(current.call)
        stack.extend(current.dependencies)
    restricted = [roles for roles in map(admitted_roles, calls) if roles is not None]
    if restricted:
        return frozenset.intersection(*restricted)
    if identify in calls:
        return None
    raise LookupError("declares neither allow(...) nor PUBLIC")
