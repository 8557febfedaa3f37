"""The role matrix: every route of the app (read from ``app.routes``, so a new endpoint is covered
the day it is added) declares ``allow(...)`` or ``PUBLIC``, and answers accordingly to no one and
to each role; public answers never show private records, locations or secrets; docs/security.md
lists exactly what the code declares."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from cloud.tests.auth_support import JWT_SECRET, OPERATOR, PASSWORD, TOKEN, auth_api
from misto.cloud.api import create_app
from misto.cloud.api.access import declaration
from misto.cloud.auth.roles import Role
from misto.cloud.settings import load_settings

ROLES = tuple(Role)
SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
BEGIN, END = "<!-- role-table:begin -->", "<!-- role-table:end -->"
#: Routes FastAPI and Starlette add themselves: the OpenAPI document, its viewers, static files.
FRAMEWORK_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}
#: Path parameters filled in the matrix: ids of records that exist (private ones, to be sure
#: a public answer never shows them) or that do not (the check must come before the lookup).
SAMPLE_PARAMS = {
    "gateway": "gw-private",
    "gateway_id": "gw-private",
    "device_id": "aq-private",
    "model_id": "aq1",
    "command_id": "c-1",
    "username": "nobody",
    "key_id": "000000000000",
}
PRIVATE_LOCATION = {"lon": 32.6789, "lat": 46.6543}
PRIVATE_TEXT = ("32.6789", "46.6543", "ops-private@city", "behind the substation fence", "Substation gateway")


def endpoints(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) of every API route, those of included routers too (FastAPI 0.165
    keeps them behind lazy ``_IncludedRouter`` entries of ``app.routes``)."""
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute):
            for method in sorted(route.methods or ()):
                yield method, str(route.path), route


def filled(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE_PARAMS.get(m[1], "x-1"), path)


def bare_app() -> FastAPI:
    return create_app(load_settings(overrides={"api": {"operator_token": TOKEN, "jwt_secret": JWT_SECRET}}))


def test_every_route_declares_who_may_call_it() -> None:
    app = bare_app()
    undeclared = []
    for method, path, route in endpoints(app):
        try:
            declaration(route.dependant)
        except LookupError:
            undeclared.append(f"{method} {path}")
    assert undeclared == [], "routes without allow(...) or PUBLIC"
    others = {
        getattr(route, "path", "?")
        for route in iter_route_contexts(app.routes)
        if not isinstance(route.original_route, APIRoute)
    }
    assert others <= FRAMEWORK_ROUTES, f"routes outside FastAPI's APIRoute: {others - FRAMEWORK_ROUTES}"
    assert len(list(endpoints(app))) >= 40


async def seed_private_records(headers: dict[str, str], client: httpx.AsyncClient) -> None:
    base = "/api/v1/registry"
    model = {"id": "aq1", "kind": "air", "manufacturer": "Acme", "name": "AQ-1", "metrics": ["pm25"]}
    private_gateway = {
        "id": "gw-private",
        "name": "Substation gateway",
        "organisation": "Vodokanal",
        "owner_contact": "ops-private@city",
        "location": PRIVATE_LOCATION,
        "visibility": "private",
    }
    device = {
        "id": "aq-private",
        "gateway_id": "gw-private",
        "model_id": "aq1",
        "organisation": "Vodokanal",
        "owner_contact": "ops-private@city",
        "notes": "behind the substation fence",
        "location": PRIVATE_LOCATION,
        "visibility": "private",
    }
    for path, body in (("device-models", model), ("gateways", private_gateway), ("devices", device)):
        response = await client.post(f"{base}/{path}", json=body, headers=headers)
        assert response.status_code == 201, response.text


async def test_role_matrix(tmp_path: Path) -> None:
    async with auth_api(tmp_path, everyone=True) as api:
        await seed_private_records(OPERATOR, api.client)
        failures = []
        public_answers: list[str] = []
        for method, path, route in endpoints(api.app):
            declared = declaration(route.dependant)
            url = filled(path)
            body: dict[str, object] | None = {} if method in {"POST", "PUT", "PATCH"} else None
            callers: list[tuple[Role | None, dict[str, str]]] = [(None, {})]
            callers += [(role, api.headers[role]) for role in ROLES]
            for role, headers in callers:
                response = await api.client.request(method, url, json=body, headers=headers)
                if declared is None:
                    expected = "admitted"
                elif role is None:
                    expected = "401"
                else:
                    expected = "admitted" if role in declared else "403"
                got = response.status_code
                ok = got not in {401, 403} if expected == "admitted" else got == int(expected)
                if not ok or (got >= 500 and got != 503):
                    failures.append(f"{method} {path} as {role}: {got}, expected {expected}: {response.text[:200]}")
                outsider = role in {None, Role.PARTNER, Role.CITIZEN}
                if method == "GET" and outsider and expected == "admitted":
                    public_answers.append(f"{method} {path} as {role}: {response.text}")
        assert failures == []
        # a public view of a list still works, and shows nothing private
        listing = await api.client.get("/api/v1/registry/devices", headers=api.headers[Role.CITIZEN])
        assert listing.json()["items"] == []
        for answer in public_answers:
            for private in (*PRIVATE_TEXT, PASSWORD, TOKEN, JWT_SECRET, "$argon2", "secret_hash", "mst_"):
                assert private not in answer.split(": ", 1)[1], f"{answer[:120]} shows {private!r}"


def role_table(app: FastAPI) -> str:
    """docs/security.md's table of every endpoint and the roles it admits, from the code."""
    lines = ["| Endpoint | " + " | ".join(role.value for role in ROLES) + " |", "|---|" + "---|" * len(ROLES)]
    for method, path, route in sorted(endpoints(app), key=lambda e: (e[1], e[0])):
        declared = declaration(route.dependant)
        cells = ["public" if declared is None else ("yes" if role in declared else "") for role in ROLES]
        if declared is None:
            cells = ["public"] * len(ROLES)
        lines.append(f"| `{method} {path}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_security_doc_lists_what_the_code_declares() -> None:
    text = SECURITY_DOC.read_text(encoding="utf-8")
    found = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = role_table(bare_app())
    assert found == expected, (
        "docs/security.md's role table differs from the code: run "
        "`.venv/bin/python -m cloud.tests.test_auth_roles` to rewrite it"
    )


def write_role_table() -> None:
    text = SECURITY_DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    SECURITY_DOC.write_text(f"{head}{BEGIN}\n{role_table(bare_app())}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    write_role_table()
    sys.exit(0)
