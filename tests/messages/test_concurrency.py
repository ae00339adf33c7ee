"""Concurrency, on both databases: inbox numbering under concurrent notices, and workers claiming
deliveries at the same time.

The notices go through the ASGI app in-process, over its real engine and pool, so their
transactions overlap for real (on PostgreSQL; SQLite lets one writer in at a time).
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.messages import leases
from app.storage.db import is_sqlite
from app.storage.models import Delivery

NOTICES = 20
CLAIMERS, LIMIT = 6, 5


async def subscribe(world, code: str, url: str) -> None:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text


async def sequences(world, code: str) -> list[int]:
    rows = await world.sql(
        "SELECT m.sequence FROM message m"
        " JOIN organisation o ON o.id = m.recipient_organisation_id"
        " WHERE o.code = :code ORDER BY m.sequence",
        code=code,
    )
    return [row[0] for row in rows]


async def test_concurrent_notices_number_each_inbox_without_gaps_or_repeats(world, example):
    await world.headers("MDI")  # one client and token, made before the rush
    responses = await asyncio.gather(*(world.post_notice(example) for _ in range(NOTICES)))

    assert [r.status_code for r in responses] == [202] * NOTICES, [r.text for r in responses]
    for code in ("N07", "SMS-LEEDS"):
        assert await sequences(world, code) == list(range(1, NOTICES + 1)), code
        [(last,)] = await world.sql(
            "SELECT message_sequence FROM organisation WHERE code = :code", code=code
        )
        assert last == NOTICES, code
    # Nobody else's inbox moved.
    assert await sequences(world, "N99") == []


async def test_concurrent_notices_about_different_people_neither_wait_in_a_circle_nor_fail(
    world, example
):
    """Distinct people: nothing serialises these notices but the recipients' inbox counters,
    which each locks only to number its messages, after its disclosures are written (and with
    them the foreign keys' share locks on the same organisation rows: the counter lock must not
    conflict with those, or two notices deadlock)."""
    await world.headers("MDI")
    people = [copy.deepcopy(example) for _ in range(NOTICES)]
    for n, body in enumerate(people):
        body["person"]["noms_number"] = f"B{n:04d}CD"
    for _ in range(3):
        responses = await asyncio.gather(*(world.post_notice(body) for body in people))
        assert [r.status_code for r in responses] == [202] * NOTICES, [r.text for r in responses]
    for code in ("N07", "SMS-LEEDS"):
        assert await sequences(world, code) == list(range(1, 3 * NOTICES + 1)), code


async def test_concurrent_claims_take_disjoint_batches_that_cover_every_due_delivery(
    world, example, database_url
):
    for code in ("N07", "SMS-LEEDS"):
        for n in range(3):  # nothing listens on port 9: these deliveries are never sent
            await subscribe(world, code, f"http://127.0.0.1:9/unused/{n}")
    for _ in range(5):
        assert (await world.post_notice(example)).status_code == 202
    async with world.sessions() as session:
        due = set(await session.scalars(select(Delivery.id)))
    assert len(due) == CLAIMERS * LIMIT

    now = datetime.now(UTC)
    # PostgreSQL: every claiming transaction stays open, holding its row locks, until all six have
    # claimed. Only FOR UPDATE SKIP LOCKED lets a claim pass rows another still holds; without
    # it a claim waits for a lock whose holder waits for it (or claims the same rows twice).
    # SQLite: writers take turns, so a barrier inside the transactions could never be passed;
    # there the claims just run at once.
    barrier = None if is_sqlite(database_url) else asyncio.Barrier(CLAIMERS)

    async def claim() -> list[uuid.UUID]:
        async with world.sessions() as session, session.begin():
            claimed = await leases.claim_due(
                session, world.data_keys, now=now, limit=LIMIT, lease=timedelta(minutes=5)
            )
            if barrier is not None:
                await barrier.wait()
        return [c.delivery_id for c in claimed]

    try:
        # A guard against hanging for ever, not a timing assertion: it only fires on deadlock.
        async with asyncio.timeout(60):
            batches = await asyncio.gather(*(claim() for _ in range(CLAIMERS)))
    except TimeoutError:
        pytest.fail("concurrent claims blocked each other: due rows are not claimed SKIP LOCKED")

    claimed = [delivery_id for batch in batches for delivery_id in batch]
    assert all(len(batch) <= LIMIT for batch in batches), [len(b) for b in batches]
    assert len(claimed) == len(set(claimed)), "a delivery was claimed by two workers"
    assert set(claimed) == due
    # Every one is now leased, so nothing is left for a seventh worker.
    async with world.sessions() as session, session.begin():
        assert (
            await leases.claim_due(
                session, world.data_keys, now=now, limit=LIMIT, lease=timedelta(0)
            )
            == []
        )
