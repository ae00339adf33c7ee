"""A database outage is answered 503 with Retry-After, stores nothing, and passes.

The outages are real, never mocked. On PostgreSQL the test's database stops taking connections
and its backends are terminated (as when the server restarts, or an operator shuts it off);
that database is shared by the run's tests, so it is always opened again in a `finally`. SQLite
has no server to lose: its outage is another process holding the write lock past the busy
timeout (a backup, a `sqlite3` shell left in a transaction), and as SQLite keeps serving readers
meanwhile (WAL), only what writes meets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.api.deps import _request_session
from app.main import ROUTER_MODULES, create_app
from app.storage.db import is_sqlite
from tests.conftest import POSTGRES_URL, _asyncpg_dsn
from tests.helpers.outages import assert_unavailable, sqlite_write_locked
from tests.helpers.receiver import running_receiver

ONLY_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def settings(settings):
    """A busy timeout short enough to outlast in a test (SQLite's lock; PostgreSQL's pool)."""
    return settings.model_copy(update={"database_busy_timeout_seconds": 0.2})


async def _admin(sql: str, *args: Any) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def postgresql_down(database_url: str) -> AsyncIterator[None]:
    """The database refuses connections and every connection to it is cut, until the end."""
    name = make_url(database_url).database
    try:
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await _admin(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        yield
    finally:
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@contextlib.asynccontextmanager
async def outage(database_url: str) -> AsyncIterator[None]:
    if is_sqlite(database_url):
        with sqlite_write_locked(database_url):
            yield
    else:
        async with postgresql_down(database_url):
            yield


async def test_every_route_answers_503_while_the_database_is_out_and_stores_nothing(
    world, example, database_url
):
    prison, probation, auditor = [await world.headers(c) for c in ("MDI", "N07", "AUDIT")]
    client = await world.credentials("N07")
    first = await world.post_notice(example)
    assert first.status_code == 202
    notice_url = first.headers["location"]
    key = {"idempotency-key": str(uuid.uuid4())}
    before = await world.counts()

    calls = {
        "notice POST": ("POST", "/v1/release-notices", {"json": example, "headers": prison | key}),
        "notice GET": ("GET", notice_url, {"headers": prison}),
        "token": (
            "POST",
            "/oauth/token",
            {"data": {"grant_type": "client_credentials"}, "auth": client},
        ),
        "inbox": ("GET", "/v1/messages", {"headers": probation}),
        "audit entries": ("GET", "/v1/audit/entries", {"headers": auditor}),
    }

    async def call_each() -> dict[str, httpx.Response]:
        return {name: await world.api.request(m, url, **kw) for name, (m, url, kw) in calls.items()}

    async with outage(database_url):
        answers = await call_each()

    # What writes meets the outage everywhere; on SQLite what only reads goes on (WAL).
    writes = {"notice POST", "audit entries"}  # reading the log is itself logged
    for name, response in answers.items():
        if is_sqlite(database_url) and name not in writes:
            assert response.status_code == 200, (name, response.text)
        else:
            body = assert_unavailable(response)
            assert "stored nothing" in body["detail"], name
            assert "Idempotency-Key" in body["detail"], name
    assert await world.counts() == before

    again = await call_each()
    assert again["notice POST"].status_code == 202, again["notice POST"].text
    assert "idempotent-replayed" not in again["notice POST"].headers
    assert all(again[n].status_code == 200 for n in again if n != "notice POST"), again
    after = await world.counts()
    assert after["release_notice"] == before["release_notice"] + 1


# Deferred to the COMMIT: the backend that commits a new notice is terminated right then.
DROP_AT_COMMIT = [
    "CREATE FUNCTION drop_at_commit() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER drop_at_commit AFTER INSERT ON release_notice"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION drop_at_commit()",
]
DROP_AT_COMMIT_REMOVAL = [
    "DROP TRIGGER IF EXISTS drop_at_commit ON release_notice",
    "DROP FUNCTION IF EXISTS drop_at_commit()",
]


async def ddl(world, *statements: str) -> None:
    async with world.sessions() as session, session.begin():
        for statement in statements:
            await session.execute(text(statement))


@ONLY_POSTGRESQL
async def test_a_connection_lost_while_committing_says_the_outcome_is_unknown(world, example):
    prison = await world.headers("MDI")
    key = {"idempotency-key": str(uuid.uuid4())}
    before = await world.counts()
    try:
        await ddl(world, *DROP_AT_COMMIT)
        lost = await world.api.post("/v1/release-notices", json=example, headers={**prison, **key})
    finally:
        await ddl(world, *DROP_AT_COMMIT_REMOVAL)

    body = assert_unavailable(lost)
    assert "unknown" in body["detail"] and "stored nothing" not in body["detail"]
    assert "same Idempotency-Key" in body["detail"]
    # Sent again with the same key it is stored, once, whatever became of the first.
    again = await world.api.post("/v1/release-notices", json=example, headers={**prison, **key})
    assert again.status_code == 202, again.text
    replayed = await world.api.post("/v1/release-notices", json=example, headers={**prison, **key})
    assert replayed.headers["idempotent-replayed"] == "true"
    assert (await world.counts())["release_notice"] == before["release_notice"] + 1


@ONLY_POSTGRESQL
async def test_token_requests_refused_by_an_outage_do_not_count_as_guesses(world, settings):
    client = await world.credentials("N07")
    form = {"grant_type": "client_credentials"}
    async with outage(settings.database_url):
        for _ in range(settings.client_auth_failure_limit + 1):
            assert_unavailable(await world.api.post("/oauth/token", data=form, auth=client))
    # The client's secret was never checked: it is not throttled once the database is back.
    response = await world.api.post("/oauth/token", data=form, auth=client)
    assert response.status_code == 200, response.text


@ONLY_POSTGRESQL
async def test_the_embedded_worker_outlives_an_outage_and_delivers_after_it(
    world, example, settings
):
    with running_receiver() as receiver:
        response = await world.api.post(
            "/v1/subscriptions", json={"url": receiver.url}, headers=await world.headers("N07")
        )
        assert response.status_code == 201, response.text
        prison = await world.headers("MDI")
        application = create_app(settings, embedded_worker=True)
        async with application.router.lifespan_context(application):
            async with outage(settings.database_url):
                await asyncio.sleep(1.5)  # many of the worker's passes meet the outage
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=world.api.base_url) as api:
                accepted = await api.post("/v1/release-notices", json=example, headers=prison)
                assert accepted.status_code == 202, accepted.text
                [request] = await asyncio.to_thread(receiver.wait_for, 1, 15)
    sent = {r["message_id"] for r in accepted.json()["recipients"]}
    assert request.headers["webhook-id"] in sent


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_database_that_is_not_there_at_all_is_a_503_and_not_ready(
    settings, database_url, tmp_path
):
    """PostgreSQL not running (connection refused); SQLite's folder gone (cannot open)."""
    if is_sqlite(database_url):
        folder = tmp_path / "gone"
        url = f"sqlite+aiosqlite:///{folder}/exchange.db"
    else:
        url = make_url(database_url).set(port=_closed_port()).render_as_string(False)
    application = create_app(settings.model_copy(update={"database_url": url}))
    async with application.router.lifespan_context(application):
        if is_sqlite(database_url):
            folder.rmdir()  # made by the engine, before anything was stored in it
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://exchange.test") as api:
            token = await api.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=("cli_x", "s")
            )
            ready = await api.get("/readyz")
            live = await api.get("/healthz")
    assert "stored nothing" in assert_unavailable(token)["detail"]
    assert ready.status_code == 503 and ready.json()["database"] == "unreachable"
    assert int(ready.headers["retry-after"]) > 0
    assert live.status_code == 200


def _uses_the_database(route: APIRoute) -> bool:
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        if dependency.call is _request_session:
            return True
        stack.extend(dependency.dependencies)
    return False


def test_every_operation_that_uses_the_database_documents_its_503() -> None:
    served = FastAPI()
    for module in ROUTER_MODULES:
        served.include_router(module.router)
    paths = served.openapi()["paths"]
    routes = [
        route
        for module in ROUTER_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute) and _uses_the_database(route)
    ]
    assert len(routes) >= 30
    for route in routes:
        for method in route.methods:
            assert "503" in paths[route.path][method.lower()]["responses"], (method, route.path)
