"""Nothing waits on the database without bound: a server that stops answering, or another
connection holding a lock, is answered 503 with Retry-After within the configured timeouts.

The partition is real: a TCP proxy on loopback stands between the exchange and PostgreSQL and, once
cut, forwards nothing either way while keeping every socket open (what a lost network, a hung server
or a paused machine looks like: no reset, no answer). The locks are real too, held by another
connection. See tests/storage/test_outage.py for a database that refuses or drops connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.main import create_app
from app.storage.db import is_sqlite
from tests.conftest import _asyncpg_dsn
from tests.helpers.outages import assert_unavailable, sqlite_write_locked
from tests.helpers.receiver import running_receiver

ONLY_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
# Far beyond the timeouts the tests set (about a second): only a wait without bound meets it.
NO_ANSWER_SECONDS = 15
TIMEOUTS = {
    "database_busy_timeout_seconds": 0.3,
    "database_connect_timeout_seconds": 1,
    "database_command_timeout_seconds": 1,
}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update=TIMEOUTS)


class Partition:
    """A TCP proxy to PostgreSQL. While cut it forwards nothing, on open connections or new
    ones, and keeps them all open; healed, it forwards again what it held back, as TCP delivers
    what it retransmitted once the network is back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.forwarding = asyncio.Event()
        self.forwarding.set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[int]:
        """The proxy's port, until the end, when every connection is closed."""
        server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()
            for writer in self.writers:
                writer.close()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._forward(reader, writer))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await self.forwarding.wait()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers.append(up_writer)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                await self.forwarding.wait()
                sink.write(data)
                await sink.drain()
            sink.close()

        with contextlib.suppress(OSError):
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


async def answered(request: Any) -> tuple[httpx.Response, float]:
    """The response and how long it took; a failure if there is none in NO_ANSWER_SECONDS."""
    started = time.monotonic()
    try:
        response = await asyncio.wait_for(request, NO_ANSWER_SECONDS)
    except TimeoutError:
        pytest.fail(f"no answer in {NO_ANSWER_SECONDS} s: the request waits without bound")
    return response, time.monotonic() - started


@contextlib.asynccontextmanager
async def through(partition: Partition, settings) -> AsyncIterator[httpx.AsyncClient]:
    """An exchange, its embedded worker included, that reaches PostgreSQL through the proxy."""
    url = make_url(settings.database_url)
    partition.port = url.port or 5432
    async with partition.serving() as port:
        proxied = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        changes = {"database_url": proxied}
        application = create_app(settings.model_copy(update=changes), embedded_worker=True)
        async with application.router.lifespan_context(application):
            try:
                async with client_of(application) as api:
                    yield api
            finally:
                partition.forwarding.set()  # whatever happened: the app closes its connections


def client_of(application: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application)
    return httpx.AsyncClient(transport=transport, base_url="http://exchange.test")


async def subscribed(world, receiver) -> None:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": receiver.url}, headers=await world.headers("N07")
    )
    assert response.status_code == 201, response.text


async def stored(world) -> dict[str, int]:
    """Row counts, but for the log's tree, which the worker grows from entries already made."""
    tree = ("audit_leaf", "audit_node", "audit_checkpoint")
    return {table: n for table, n in (await world.counts()).items() if table not in tree}


@ONLY_POSTGRESQL
async def test_a_database_that_stops_answering_is_a_503_within_the_timeouts(
    world, example, settings
):
    client = await world.credentials("N07")
    prison = await world.headers("MDI")
    key = {"idempotency-key": str(uuid.uuid4())}
    partition = Partition(0)
    with running_receiver() as receiver:
        await subscribed(world, receiver)
        async with through(partition, settings) as api:
            assert (await api.get("/readyz")).status_code == 200  # the pool holds connections
            before = await stored(world)
            partition.forwarding.clear()
            calls = [  # a pooled connection first, then new ones, which cannot connect
                api.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=client),
                api.post("/v1/release-notices", json=example, headers=prison | key),
                api.get("/v1/messages", headers=await world.headers("N07")),
            ]
            for call in calls:
                response, took = await answered(call)
                assert "stored nothing" in assert_unavailable(response)["detail"]
                assert took < NO_ANSWER_SECONDS / 2, took
            await asyncio.sleep(1.5)  # the embedded worker's passes meet the partition too
            assert await stored(world) == before
            partition.forwarding.set()

            # Healed: served again, and the worker, which outlived it, delivers.
            accepted, _ = await answered(
                api.post("/v1/release-notices", json=example, headers=prison | key)
            )
            assert accepted.status_code == 202, accepted.text
            assert "idempotent-replayed" not in accepted.headers
            [request] = await asyncio.to_thread(receiver.wait_for, 1, NO_ANSWER_SECONDS)
    sent = {r["message_id"] for r in accepted.json()["recipients"]}
    assert request.headers["webhook-id"] in sent


@contextlib.asynccontextmanager
async def holding(database_url: str, statement: str, *args: Any) -> AsyncIterator[None]:
    """Another connection holds, in a transaction, what the statement locks, until the end."""
    holder = await asyncpg.connect(_asyncpg_dsn(database_url), timeout=5)
    try:
        async with holder.transaction():
            await holder.execute(statement, *args)
            yield
    finally:
        await holder.close()


@contextlib.asynccontextmanager
async def notices_locked(database_url: str) -> AsyncIterator[None]:
    """Another connection holds a lock that any new notice waits for: on PostgreSQL an
    operator's LOCK TABLE (or a long ALTER TABLE); on SQLite the write lock."""
    if is_sqlite(database_url):
        with sqlite_write_locked(database_url):
            yield
    else:
        async with holding(database_url, "LOCK TABLE release_notice IN ACCESS EXCLUSIVE MODE"):
            yield


def assert_busy(response: httpx.Response) -> None:
    body = assert_unavailable(response)
    assert body["title"] == "Busy" and "stored nothing" in body["detail"]


async def busy_while_notices_locked(world, example, database_url) -> None:
    """A notice posted while another connection holds what it waits for is a 503 Busy that
    stores nothing, and is accepted once the lock is gone."""
    prison = await world.headers("MDI")
    before = await world.counts()
    async with notices_locked(database_url):
        response, _ = await answered(
            world.api.post("/v1/release-notices", json=example, headers=prison)
        )
    assert_busy(response)
    assert await world.counts() == before
    again = await world.api.post("/v1/release-notices", json=example, headers=prison)
    assert again.status_code == 202, again.text


async def test_a_lock_held_past_the_busy_timeout_is_a_503_busy(world, example, database_url):
    await busy_while_notices_locked(world, example, database_url)


@pytest.fixture
async def statement_timeout(database_url):
    """An operator's statement_timeout on the database, shorter than the exchange's lock
    timeout, set before the exchange opens its first connection (it holds for new sessions),
    and reset after the test (the database serves the tests after it)."""

    async def alter(to: str) -> None:
        admin = await asyncpg.connect(_asyncpg_dsn(database_url), timeout=5)
        try:
            name = await admin.fetchval("SELECT current_database()")
            await admin.execute(f'ALTER DATABASE "{name}" {to}')
        finally:
            await admin.close()

    await alter("SET statement_timeout = 100")
    yield
    await alter("RESET statement_timeout")


@ONLY_POSTGRESQL
async def test_a_statement_the_server_cancels_for_its_statement_timeout_is_a_503_busy(
    statement_timeout, world, example, database_url
):
    """PostgreSQL cancelling a statement past an operator's statement_timeout (57014) says the
    server could not answer in time, as a lock held past the busy timeout does: 503 Busy with
    Retry-After, nothing stored, and the notice accepted once the lock is gone."""
    await busy_while_notices_locked(world, example, database_url)


@ONLY_POSTGRESQL
async def test_a_person_whose_lock_is_held_is_a_503_busy_and_nobody_else_waits(
    world, example, database_url
):
    """A person's notices, consents and withdrawals take the person's advisory lock; one held
    past the busy timeout (a stuck transaction) makes that person's requests answer 503 Busy,
    and nobody else's."""
    prison = await world.headers("MDI")
    person_ref = world.data_keys.person_ref(example["person"]["noms_number"])
    someone_else = example | {"person": example["person"] | {"noms_number": "Z9999ZZ"}}
    lock = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
    async with holding(database_url, lock, person_ref):
        waited, _ = await answered(
            world.api.post("/v1/release-notices", json=example, headers=prison)
        )
        other, _ = await answered(
            world.api.post("/v1/release-notices", json=someone_else, headers=prison)
        )
    assert_busy(waited)
    assert other.status_code == 202, other.text
    again = await world.api.post("/v1/release-notices", json=example, headers=prison)
    assert again.status_code == 202, again.text


@ONLY_POSTGRESQL
async def test_the_worker_outlives_locks_held_past_the_busy_timeout(
    world, example, settings, caplog
):
    caplog.set_level(logging.ERROR, logger="exchange.worker")
    with running_receiver() as receiver:
        await subscribed(world, receiver)
        application = create_app(settings, embedded_worker=True)
        async with application.router.lifespan_context(application):
            async with holding(settings.database_url, "LOCK TABLE delivery IN EXCLUSIVE MODE"):
                # Held until a pass of the worker has given up waiting for it (and logged so).
                deadline = asyncio.get_running_loop().time() + 30
                while not any("failed" in r.getMessage() for r in caplog.records):
                    assert asyncio.get_running_loop().time() < deadline, caplog.text
                    await asyncio.sleep(0.1)
            async with client_of(application) as api:
                accepted = await api.post(
                    "/v1/release-notices", json=example, headers=await world.headers("MDI")
                )
                assert accepted.status_code == 202, accepted.text
                [request] = await asyncio.to_thread(receiver.wait_for, 1, NO_ANSWER_SECONDS)
    sent = {r["message_id"] for r in accepted.json()["recipients"]}
    assert request.headers["webhook-id"] in sent
