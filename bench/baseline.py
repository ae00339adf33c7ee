"""The intake baseline: a bare FastAPI endpoint that stores each posted body as one row.

It runs as the exchange does (one uvicorn process, no access log, the same SQLAlchemy async
engine and pool over asyncpg, one transaction per request) against the same PostgreSQL, so the
gap between the two is what the exchange itself does with a notice: validate, route, decide,
sign, queue, log. `python -m bench.baseline DATABASE_URL PORT`.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI, Request
from sqlalchemy import text

from app.storage.db import make_engine

TABLE = """CREATE TABLE IF NOT EXISTS bench_baseline (
    id uuid PRIMARY KEY, body jsonb NOT NULL, received_at timestamptz NOT NULL)"""
INSERT = text("INSERT INTO bench_baseline (id, body, received_at) VALUES (:id, :body, :at)")


def create_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = make_engine(database_url)
        async with app.state.engine.begin() as connection:
            await connection.execute(text(TABLE))
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/notices", status_code=202)
    async def post_notice(request: Request) -> dict[str, str]:
        body = json.loads(await request.body())
        row_id = uuid.uuid4()
        async with request.app.state.engine.begin() as connection:
            await connection.execute(
                INSERT, {"id": row_id, "body": json.dumps(body), "at": datetime.now(UTC)}
            )
        return {"id": str(row_id)}

    @app.post("/statements/{count}", status_code=202)
    async def post_statements(request: Request, count: int) -> dict[str, str]:
        """The same, then count - 1 more one-row statements in the same transaction: what a
        transaction of count statements costs through this stack, before any work of its own."""
        body = json.loads(await request.body())
        row_id = uuid.uuid4()
        at = datetime.now(UTC)
        async with request.app.state.engine.begin() as connection:
            await connection.execute(INSERT, {"id": row_id, "body": json.dumps(body), "at": at})
            for _ in range(count - 1):
                await connection.execute(INSERT, {"id": uuid.uuid4(), "body": "{}", "at": at})
        return {"id": str(row_id)}

    return app


if __name__ == "__main__":
    app = create_app(sys.argv[1])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=False, log_config=None)
