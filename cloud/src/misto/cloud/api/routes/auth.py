"""``/api/v1/auth``: sign-in (OAuth2 password flow: ``POST /token`` with a form of ``username``
and ``password`` gives a JWT), who am I (``GET /me``), and the admins' management of people
(``/users``) and machines' API keys (``/api-keys``; a key is shown once, when it is created).
Every change is in the registry's audit log (entities ``user`` and ``api_key``), never a password,
a hash or a key. See docs/security.md."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from misto.cloud.api.access import ALL_ROLES, PUBLIC, AuthenticatorDep, allow, refused
from misto.cloud.api.routes.registry import registry_errors
from misto.cloud.auth.authenticator import Authenticator
from misto.cloud.auth.errors import AuthError, Refusal
from misto.cloud.auth.models import (
    DEFAULT_RATE_LIMIT,
    MAX_RATE_LIMIT,
    MAX_TEXT,
    USERNAME_PATTERN,
    ApiKey,
    User,
)
from misto.cloud.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from misto.cloud.auth.roles import Principal, Role
from misto.cloud.auth.store import AuthStore

PREFIX = "/api/v1/auth"
router = APIRouter(prefix=PREFIX, tags=["auth"])
Admin = Annotated[Principal, allow(Role.ADMIN)]
Anyone = Annotated[Principal, allow(*ALL_ROLES)]
Username = Annotated[str, Path(max_length=64, description="Username", examples=["olena"])]
KeyId = Annotated[str, Path(max_length=16, description="The key's id (its public part)", examples=["3f9a1c0b2d4e"])]
Password = Annotated[SecretStr, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]

AUTH_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "No credentials"},
    403: {"description": "Credentials refused, or not an admin"},
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class TokenOut(_Out):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires")
    role: Role


class Me(_Out):
    subject: str = Field(description="As the audit log names the caller: user:<name>, key:<id> or operator")
    role: Role
    display_name: str | None = None
    organisation: str | None = Field(default=None, description="An API key's organisation")


class UserCreate(_In):
    username: Annotated[str, Field(pattern=USERNAME_PATTERN, max_length=64)]
    display_name: Text
    role: Role
    password: Password


class UserPatch(_In):
    display_name: Text | None = None
    role: Role | None = None
    disabled: bool | None = None
    password: Password | None = None
    version: int | None = Field(default=None, ge=1, description="The version read: 409 when it changed meanwhile")


class UserOut(_Out):
    username: str
    display_name: str
    role: Role
    disabled: bool
    password_changed_at: datetime
    last_login_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            disabled=user.disabled,
            password_changed_at=user.password_changed_at,
            last_login_at=user.last_login_at,
            version=user.version,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class ApiKeyCreate(_In):
    name: Text = Field(description="What the key is for")
    organisation: Text
    role: Role = Role.PARTNER
    rate_limit: int = Field(default=DEFAULT_RATE_LIMIT, ge=1, le=MAX_RATE_LIMIT, description="Requests per minute")


class ApiKeyOut(_Out):
    id: str
    name: str
    organisation: str
    role: Role
    rate_limit: int
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, api_key: ApiKey) -> ApiKeyOut:
        return cls(
            id=api_key.id,
            name=api_key.name,
            organisation=api_key.organisation,
            role=api_key.role,
            rate_limit=api_key.rate_limit,
            created_by=api_key.created_by,
            created_at=api_key.created_at,
            revoked_at=api_key.revoked_at,
        )


class ApiKeyIssued(ApiKeyOut):
    key: str = Field(description="The key, shown this once: send it as 'Authorization: Bearer <key>'")


def _store(authenticator: Authenticator) -> AuthStore:
    try:
        return authenticator.store()
    except AuthError as error:
        raise refused(error) from None


# --- sign-in --------------------------------------------------------------------------------


@router.post(
    "/token",
    response_model=TokenOut,
    dependencies=[PUBLIC],
    summary="Sign in (OAuth2 password flow): a form of username and password gives a bearer token",
    responses={
        401: {"description": "Wrong username or password (the same for an unknown or disabled user)"},
        429: {"description": "Too many attempts for this username: see Retry-After"},
    },
)
async def token(
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)],
    authenticator: AuthenticatorDep,
    response: Response,
) -> TokenOut:
    try:
        user, issued = await authenticator.login(username, password)
    except AuthError as error:
        if error.refusal is Refusal.INVALID:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, error.message, headers={"WWW-Authenticate": "Bearer"}
            ) from None
        raise refused(error) from None
    response.headers["Cache-Control"] = "no-store"
    return TokenOut(access_token=issued.token, expires_in=authenticator.codec.lifetime_s, role=user.role)


@router.get("/me", response_model=Me, summary="Who the credentials prove", responses=AUTH_RESPONSES)
async def me(principal: Anyone, authenticator: AuthenticatorDep) -> Me:
    kind, _, name = principal.subject.partition(":")
    with registry_errors():
        if kind == "user":
            user = await _store(authenticator).get_user(name)
            return Me(subject=principal.subject, role=principal.role, display_name=user.display_name)
        if kind == "key":
            api_key = await _store(authenticator).get_key(name)
            return Me(subject=principal.subject, role=principal.role, organisation=api_key.organisation)
    return Me(subject=principal.subject, role=principal.role)


# --- people ---------------------------------------------------------------------------------


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a person (admins)",
    responses={**AUTH_RESPONSES, 409: {"description": "The username is taken"}},
)
async def create_user(
    body: UserCreate, principal: Admin, authenticator: AuthenticatorDep, response: Response
) -> UserOut:
    with registry_errors():
        user = await _store(authenticator).create_user(
            body.username,
            display_name=body.display_name,
            role=body.role,
            password=body.password.get_secret_value(),
            actor=principal.subject,
        )
    response.headers["Location"] = f"{PREFIX}/users/{user.username}"
    return UserOut.of(user)


@router.get("/users", response_model=list[UserOut], summary="Every person (admins)", responses=AUTH_RESPONSES)
async def list_users(_admin: Admin, authenticator: AuthenticatorDep) -> list[UserOut]:
    with registry_errors("query"):
        return [UserOut.of(user) for user in await _store(authenticator).users()]


@router.get(
    "/users/{username}",
    response_model=UserOut,
    summary="One person (admins)",
    responses={**AUTH_RESPONSES, 404: {"description": "No such user"}},
)
async def get_user(username: Username, _admin: Admin, authenticator: AuthenticatorDep) -> UserOut:
    with registry_errors("query"):
        return UserOut.of(await _store(authenticator).get_user(username))


@router.patch(
    "/users/{username}",
    response_model=UserOut,
    summary="Change a person's name, role, password or disable them (admins; not their own role or access)",
    responses={**AUTH_RESPONSES, 404: {"description": "No such user"}, 409: {"description": "Stale or self-lockout"}},
)
async def update_user(
    username: Username, body: UserPatch, principal: Admin, authenticator: AuthenticatorDep
) -> UserOut:
    if principal.subject == f"user:{username}" and (body.disabled or (body.role not in {None, Role.ADMIN})):
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin may not disable or demote their own account")
    with registry_errors():
        user = await _store(authenticator).update_user(
            username,
            actor=principal.subject,
            display_name=body.display_name,
            role=body.role,
            disabled=body.disabled,
            password=body.password.get_secret_value() if body.password is not None else None,
            version=body.version,
        )
    return UserOut.of(user)


@router.delete(
    "/users/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a person (admins; not themselves)",
    responses={**AUTH_RESPONSES, 404: {"description": "No such user"}, 409: {"description": "Self-lockout"}},
)
async def delete_user(username: Username, principal: Admin, authenticator: AuthenticatorDep) -> None:
    if principal.subject == f"user:{username}":
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin may not remove their own account")
    with registry_errors("query"):
        await _store(authenticator).delete_user(username, actor=principal.subject)


# --- API keys -------------------------------------------------------------------------------


@router.post(
    "/api-keys",
    response_model=ApiKeyIssued,
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key (admins); the key is in this answer only",
    responses=AUTH_RESPONSES,
)
async def create_api_key(
    body: ApiKeyCreate, principal: Admin, authenticator: AuthenticatorDep, response: Response
) -> ApiKeyIssued:
    with registry_errors():
        issued = await _store(authenticator).create_key(
            name=body.name,
            organisation=body.organisation,
            role=body.role,
            rate_limit=body.rate_limit,
            actor=principal.subject,
        )
    response.headers["Location"] = f"{PREFIX}/api-keys/{issued.api_key.id}"
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyIssued(**ApiKeyOut.of(issued.api_key).model_dump(), key=issued.key)


@router.get(
    "/api-keys",
    response_model=list[ApiKeyOut],
    summary="Every API key, revoked ones too, never the key itself (admins)",
    responses=AUTH_RESPONSES,
)
async def list_api_keys(
    _admin: Admin,
    authenticator: AuthenticatorDep,
    organisation: Annotated[str | None, Query(max_length=MAX_TEXT)] = None,
) -> list[ApiKeyOut]:
    with registry_errors("query"):
        return [ApiKeyOut.of(k) for k in await _store(authenticator).keys(organisation=organisation)]


@router.delete(
    "/api-keys/{key_id}",
    response_model=ApiKeyOut,
    summary="Revoke an API key (admins): it is refused from the next request on",
    responses={**AUTH_RESPONSES, 404: {"description": "No such key"}},
)
async def revoke_api_key(key_id: KeyId, principal: Admin, authenticator: AuthenticatorDep) -> ApiKeyOut:
    with registry_errors("query"):
        revoked = await _store(authenticator).revoke_key(key_id, actor=principal.subject)
    authenticator.limiter.forget(revoked.subject)
    return ApiKeyOut.of(revoked)
