"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.api.callers import MetricsReader
from app.api.problems import (
    PROBLEMS,
    UNAVAILABLE_RETRY_AFTER_SECONDS,
    documented,
    problem_response,
)
from app.storage import migrate
from app.wire.errors import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz", name="live")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    name="ready",
    responses={503: documented("Not ready: the database is unreachable or not migrated.")},
)
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the migrations' head."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current = await connection.run_sync(migrate.current_revision)
    except Exception:
        return _unavailable("The database does not answer.", "unreachable")
    head = migrate.head_revision()
    if current != head:
        return _unavailable("The database schema is not at the migrations' head.", "not migrated")
    return JSONResponse({"status": "ok", "database": "ok", "schema": head})


def _unavailable(detail: str, database: str) -> JSONResponse:
    retry = {"retry-after": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
    return problem_response(
        Problem(
            503, "Not ready", detail, headers=retry, extra={"status": 503, "database": database}
        )
    )


@router.get(
    "/metrics",
    name="metrics",
    response_class=PlainTextResponse,
    responses={s: PROBLEMS[s] for s in (401, 403, 503)},
)
async def metrics(request: Request, _: MetricsReader) -> PlainTextResponse:
    """Prometheus metrics: counts by code, never an identifier or a value. For operators only:
    an access token with the `metrics:read` scope (Prometheus's `oauth2` client credentials,
    of an operator's client registered with that scope alone)."""
    return PlainTextResponse(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
