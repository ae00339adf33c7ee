"""Every /v1 operation is guarded: no token is 401, and each names the scope it needs.

A route added later without an access rule makes this fail.
"""

from __future__ import annotations

import re
import uuid

from fastapi.routing import APIRoute

from app.auth import Scope

OPEN = {"/healthz", "/readyz", "/oauth/token", "/.well-known/jwks.json"}


def _operations(app) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if path not in OPEN
    ]


async def test_every_non_public_operation_refuses_a_caller_without_a_token(app, api) -> None:
    operations = _operations(app)
    assert len(operations) >= 8
    assert all(path.startswith("/v1/") for _, path in operations)
    for method, path in operations:
        url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
        response = await api.request(method.upper(), url, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")


def _scopes_required(route: APIRoute) -> set[str]:
    names = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        name = getattr(dependency.call, "__name__", "")
        if name.startswith("require_"):
            names.add(name.removeprefix("require_"))
        stack.extend(dependency.dependencies)
    return names


def test_every_v1_route_requires_exactly_one_scope(app) -> None:
    scopes = {s.name.lower() for s in Scope}
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/v1/"):
            required = _scopes_required(route)
            assert len(required) == 1 and required <= scopes, (route.path, required)


async def test_a_token_from_the_wrong_kind_is_forbidden_not_hidden(world) -> None:
    response = await world.api.get("/v1/messages", headers=await world.headers("MDI"))
    assert response.status_code == 403
    assert "messages:read" in response.json()["detail"]
