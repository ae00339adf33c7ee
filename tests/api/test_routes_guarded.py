"""The scope table of DESIGN.md holds on every route, for every kind of organisation.

Walks the OpenAPI document: a route added later without an access rule makes this fail.
"""

from __future__ import annotations

import re
import uuid

from fastapi.routing import APIRoute

from app.access.identity import KIND_SCOPES, Scope
from app.main import ROUTER_MODULES

OPEN = {
    "/healthz",
    "/readyz",
    "/oauth/token",
    "/.well-known/jwks.json",
    # Public keys, for anyone to verify any message the exchange ever signed.
    "/v1/signing-keys",
    "/v1/signing-keys/{kid}",
}
# One organisation of each kind, as tests/conftest.py registers them.
OF_KIND = {
    "prison": "MDI",
    "probation_provider": "N07",
    "substance_misuse_service": "SMS-LEEDS",
    "auditor": "AUDIT",
    "operator": "OPS",
}


def _operations(app) -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if path not in OPEN
    ]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def _scope_of(route: APIRoute) -> set[frozenset[Scope]]:
    """Each access rule on the route: the scopes of which the caller must hold one."""
    rules = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if getattr(dependency.call, "__name__", "").startswith("require_"):
            rules.add(frozenset(dependency.call.scopes))
        stack.extend(dependency.dependencies)
    return rules


def _routes() -> list[APIRoute]:
    """Every route the app serves (app.routes holds FastAPI's wrappers, not the routes)."""
    routes = [r for module in ROUTER_MODULES for r in module.router.routes]
    assert routes and all(isinstance(r, APIRoute) for r in routes)
    return routes


def _required() -> dict[tuple[str, str], frozenset[Scope] | None]:
    found = {}
    for route in _routes():
        if route.path not in OPEN:
            rules = _scope_of(route)
            rule = rules.pop() if len(rules) == 1 else None
            for method in route.methods:
                found[(method.lower(), route.path)] = rule
    return found


def test_every_guarded_route_requires_exactly_one_scope(app) -> None:
    """One rule per route: one scope, or (reading acknowledgements) any one of a few."""
    required = _required()
    assert set(required) == set(_operations(app)), "every served /v1 operation is walked"
    assert [operation for operation, scope in required.items() if scope is None] == []


def test_the_open_v1_routes_ask_for_no_scope_and_only_read() -> None:
    open_routes = [r for r in _routes() if r.path.startswith("/v1/") and r.path in OPEN]
    assert {r.path for r in open_routes} == {p for p in OPEN if p.startswith("/v1/")}
    assert all(r.methods == {"GET"} and not _scope_of(r) for r in open_routes)


async def test_every_non_public_operation_refuses_a_caller_without_a_token(app, api) -> None:
    operations = _operations(app)
    assert len(operations) >= 15
    assert {path for _, path in operations if not path.startswith("/v1/")} == {"/metrics"}
    for method, path in operations:
        response = await api.request(method.upper(), _url(path), json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_every_operation_answers_every_kind_as_the_scope_table_says(app, world) -> None:
    required = _required()
    assert set(required) == set(_operations(app))
    for kind, code in OF_KIND.items():
        headers = await world.headers(code)
        for (method, path), scope in required.items():
            response = await world.api.request(method.upper(), _url(path), json={}, headers=headers)
            if scope & KIND_SCOPES[kind]:
                assert response.status_code not in (401, 403), (kind, method, path)
            else:
                assert response.status_code == 403, (kind, method, path, response.status_code)
                assert all(s.value in response.json()["detail"] for s in scope)
