"""Transactions that lock many deliveries lock them in one order (app/messages/lock_order.py), so
that a recipient deleting a subscription while the worker delivers to it never deadlocks.

A real worker (run_forever) delivers to a real, slow loopback receiver while DELETEs race it;
on PostgreSQL the order each writer takes its locks in is also watched row by row.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from app.messages import leases, outcomes
from app.messages.webhook import Outcome
from app.notices import retention
from app.storage.db import is_sqlite
from app.storage.models import Delivery, Message, StoredNotice
from tests.helpers.problems import assert_problem
from tests.helpers.receiver import running_receiver
from tests.helpers.worker import replace_settings, subscribe, until_waiting_or_done, worker

BACKLOG = 20  # notices, so messages for N07, each subscription recovers
SUBSCRIPTIONS = 5  # subscriptions of N07 per round, each deleted while its backlog is sent
ROUNDS = 2


async def test_deleting_subscriptions_while_the_worker_sends_their_backlog_never_deadlocks(
    world, example, settings, caplog
):
    """On PostgreSQL, with unordered locks, now and then a DELETE's UPDATE and a worker's
    recording of outcomes each held a delivery that the other wanted: one of them was rolled
    back as a deadlock (the DELETE answering 500, or the worker's pass failing). That needs the
    two statements to overlap, which here happened about once in a hundred DELETEs: the order
    itself is watched row by row in the test after this one."""
    caplog.set_level(logging.WARNING, logger="exchange")
    settings = replace_settings(settings, worker_subscription_concurrency=8)
    for _ in range(BACKLOG):
        assert (await world.post_notice(example)).status_code == 202
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    n07 = await world.headers("N07")
    answers, deleted = [], []
    with running_receiver(delay=0.1) as receiver:
        async with worker(world, settings):
            for _ in range(ROUNDS):
                ids = [
                    (await subscribe(world, "N07", receiver.url))[0] for _ in range(SUBSCRIPTIONS)
                ]
                for subscription_id in ids:  # the recovered backlog, due at once
                    recovered = await world.api.post(
                        f"/v1/subscriptions/{subscription_id}/recover",
                        json={"since": since},
                        headers=n07,
                    )
                    assert recovered.json()["queued"] == BACKLOG, recovered.text
                for subscription_id in ids:
                    await asyncio.sleep(random.uniform(0.05, 0.3))
                    answer = await world.api.delete(
                        f"/v1/subscriptions/{subscription_id}", headers=n07
                    )
                    answers.append(answer.status_code)
                deleted += ids
    assert answers == [204] * len(answers)
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failed == []  # the worker's passes all committed: none was a deadlock's victim
    left = await world.sql(
        "SELECT count(*) FROM delivery d JOIN subscription s ON s.id = d.subscription_id"
        " WHERE s.status = 'deleted' AND d.state = 'pending'"
    )
    assert left == [(0,)]  # each DELETE killed what it found pending; no outcome revived one


# --- each writer of many deliveries, watched row by row (PostgreSQL) ------------------------

ROWS = 8  # pending deliveries of one subscription


@pytest.fixture
def postgresql_only(database_url: str) -> str:
    if is_sqlite(database_url):
        pytest.skip("SQLite has one writer at a time: no row locks to order, no deadlocks")
    return database_url


async def claimed(world) -> list[leases.Claimed]:
    async with world.sessions() as session, session.begin():
        return await leases.claim_due(
            session,
            world.data_keys,
            now=datetime.now(UTC),
            limit=ROWS,
            lease=timedelta(seconds=60),
        )


def outcomes_of(items: list[leases.Claimed], *codes: int) -> list[tuple[leases.Claimed, Outcome]]:
    """Each claim's outcome, the status codes taken in turn."""
    return [
        (item, Outcome(200 <= code < 300, code, 5, None if code < 300 else "non-2xx response"))
        for item, code in zip(items, itertools.cycle(codes), strict=False)
    ]


async def in_transaction(world, use) -> None:
    async with world.sessions() as session, session.begin():
        await use(session)


async def writing(world, writer: str, subscription_id: str) -> Awaitable[Any]:
    """Ready `writer` to write every delivery of the subscription, and return it, not started."""
    n07 = await world.headers("N07")
    path = f"/v1/subscriptions/{subscription_id}"
    if writer == "delete":
        return world.api.delete(path, headers=n07)
    if writer == "recover":
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        return world.api.post(f"{path}/recover", json={"since": since}, headers=n07)
    if writer == "enable":
        await world.api.patch(path, json={"status": "disabled"}, headers=n07)
        async with world.sessions() as session, session.begin():  # waiting out a back-off
            later = datetime.now(UTC) + timedelta(hours=1)
            await session.execute(update(Delivery).values(next_attempt_at=later))
        return world.api.patch(path, json={"status": "active"}, headers=n07)
    if writer == "purge":
        async with world.sessions() as session, session.begin():  # past the retention period
            long_ago = datetime.now(UTC) - timedelta(days=400)
            await session.execute(update(StoredNotice).values(received_at=long_ago))
            await session.execute(update(Message).values(created_at=long_ago))
        return in_transaction(
            world,
            lambda s: retention.purge(s, older_than=timedelta(days=365), now=datetime.now(UTC)),
        )
    items = await claimed(world)
    assert len(items) == ROWS
    if writer == "renew":
        until = datetime.now(UTC) + timedelta(seconds=90)
        return in_transaction(world, lambda s: leases.renew(s, items, until))
    if writer == "release":
        return in_transaction(world, lambda s: leases.release(s, items))
    codes = {"settle": (204,), "settle in groups": (204, 503, 410, 400)}[writer]
    ended = outcomes_of(items, *codes)
    return in_transaction(world, lambda s: outcomes.settle_many(s, ended, datetime.now(UTC)))


@pytest.mark.parametrize(
    "writer",
    ["delete", "settle", "settle in groups", "renew", "release", "enable", "recover", "purge"],
)
async def test_each_writer_of_many_deliveries_locks_them_in_id_order(
    world, example, postgresql_only, writer
):
    """Held up at the delivery in the middle by id, a writer holds exactly those before it: so
    two writers never each hold one that the other waits for."""
    subscription_id = (await subscribe(world, "N07", "http://127.0.0.1:9/hooks"))[0]
    for _ in range(ROWS):
        assert (await world.post_notice(example)).status_code == 202
    ids = sorted(row[0] for row in await world.sql("SELECT id FROM delivery"))
    assert len(ids) == ROWS
    write = await writing(world, writer, subscription_id)

    dsn = make_url(postgresql_only).set(drivername="postgresql").render_as_string(False)
    blocker, probe = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        holding = blocker.transaction()
        await holding.start()
        await blocker.execute("SELECT 1 FROM delivery WHERE id = $1 FOR UPDATE", ids[ROWS // 2])
        task = asyncio.ensure_future(write)
        await until_waiting_or_done(world, postgresql_only, task)
        assert not task.done(), "the writer never waited for the row held"
        async with probe.transaction():
            free = await probe.fetch(
                "SELECT id FROM delivery WHERE id = ANY($1::uuid[]) FOR UPDATE SKIP LOCKED", ids
            )
            await probe.execute("ROLLBACK")
        await holding.rollback()
        done = await task
    finally:
        await blocker.close()
        await probe.close()
    held = set(ids) - {row["id"] for row in free} - {ids[ROWS // 2]}
    assert held == set(ids[: ROWS // 2]), f"{sorted(ids.index(i) for i in held)}"
    if isinstance(done, httpx.Response):
        assert done.status_code < 300, done.text


async def test_a_request_that_loses_a_deadlock_is_503_to_try_again_and_stores_nothing(
    world, example, postgresql_only
):
    """Should a deadlock ever happen, its victim is told to retry (Retry-After), not 500. Here
    another transaction holds the delivery the DELETE needs and then waits for the subscription
    the DELETE holds; PostgreSQL rolls the DELETE back (the other waits longer to check)."""
    subscription_id = (await subscribe(world, "N07", "http://127.0.0.1:9/hooks"))[0]
    assert (await world.post_notice(example)).status_code == 202
    [(delivery_id,)] = await world.sql("SELECT id FROM delivery")
    dsn = make_url(postgresql_only).set(drivername="postgresql").render_as_string(False)
    other = await asyncpg.connect(dsn)
    try:
        async with other.transaction():
            await other.execute("SET LOCAL deadlock_timeout = '60s'")
            await other.execute("SELECT 1 FROM delivery WHERE id = $1 FOR UPDATE", delivery_id)
            deleting = asyncio.ensure_future(
                world.api.delete(
                    f"/v1/subscriptions/{subscription_id}", headers=await world.headers("N07")
                )
            )
            await until_waiting_or_done(world, postgresql_only, deleting)
            await other.execute(
                "SELECT 1 FROM subscription WHERE id = $1 FOR UPDATE",
                uuid.UUID(subscription_id),
            )
            answer = await deleting
    finally:
        await other.close()
    problem = assert_problem(answer, 503)
    assert answer.headers["retry-after"] == "1"
    assert "nothing of this request was stored" in problem["detail"]
    assert await world.sql("SELECT status FROM subscription") == [("active",)]
    assert await world.sql("SELECT state FROM delivery") == [("pending",)]
