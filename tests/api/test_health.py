"""Liveness, readiness and the published keys."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from app.main import create_app


async def test_ready_when_the_schema_is_at_head(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_readiness_logs_nothing_from_alembic(api: httpx.AsyncClient, caplog) -> None:
    """Probes call /readyz every few seconds: each call must not write to the log."""
    caplog.set_level(logging.DEBUG, logger="alembic")
    for _ in range(2):
        assert (await api.get("/readyz")).status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []


async def test_not_ready_on_a_database_that_was_never_migrated(settings, tmp_path: Path) -> None:
    empty = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/empty.db"})
    application = create_app(empty)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "not migrated"


async def test_jwks_publishes_public_keys_only(api: httpx.AsyncClient) -> None:
    [key] = (await api.get("/.well-known/jwks.json")).json()["keys"]
    assert key["kty"] == "EC" and key["alg"] == "ES256" and key["use"] == "sig"
    assert "d" not in key


async def test_an_unknown_route_is_a_problem_not_a_page(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
