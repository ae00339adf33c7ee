"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz", name="live")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", name="ready", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the migrations' head."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current = await connection.run_sync(migrate.current_revision)
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503)
    head = migrate.head_revision()
    if current != head:
        return JSONResponse({"status": "unavailable", "database": "not migrated"}, 503)
    return JSONResponse({"status": "ok", "database": "ok", "schema": head})
