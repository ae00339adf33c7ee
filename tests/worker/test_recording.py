"""The worker records the outcomes of attempts that ended together in one transaction (issue 8:
one commit for many deliveries), and one outcome's fault costs no other its record."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from app.messages import leases
from app.messages.webhook import Outcome
from app.storage.db import is_sqlite
from app.worker.transactions import record_outcomes


async def claimed_deliveries(world, example, notices: int) -> list[leases.Claimed]:
    for code in ("N07", "SMS-LEEDS"):
        response = await world.api.post(
            "/v1/subscriptions",
            json={"url": f"http://127.0.0.1:9/{code}"},
            headers=await world.headers(code),
        )
        assert response.status_code == 201, response.text
    for n in range(notices):
        example["person"]["noms_number"] = f"A{n:04d}BC"
        assert (await world.post_notice(example)).status_code == 202
    async with world.sessions() as session, session.begin():
        return await leases.claim_due(
            session,
            world.data_keys,
            now=datetime.now(UTC),
            limit=100,
            lease=timedelta(seconds=60),
        )


def now() -> datetime:
    return datetime.now(UTC)


async def test_outcomes_that_ended_together_are_recorded_with_one_commit(
    app, world, example, settings
):
    claimed = await claimed_deliveries(world, example, notices=3)
    assert len(claimed) == 6
    commits = []
    engine = app.state.sessions.kw["bind"].sync_engine

    def committed(connection) -> None:
        commits.append(connection)

    event.listen(engine, "commit", committed)
    try:
        states = await record_outcomes(
            world.sessions, settings, [(c, Outcome(True, 204, 5)) for c in claimed], clock=now
        )
    finally:
        event.remove(engine, "commit", committed)
    assert states == ["delivered"] * 6
    assert len(commits) == 1
    rows = await world.sql("SELECT state, attempts, leased_until FROM delivery")
    assert sorted(rows) == [("delivered", 1, None)] * 6
    [(attempts,)] = await world.sql("SELECT count(*) FROM delivery_attempt")
    [(logged,)] = await world.sql(
        "SELECT count(*) FROM audit_entry WHERE action = 'delivery.succeeded'"
    )
    assert (attempts, logged) == (6, 6)


async def test_an_outcome_that_cannot_be_recorded_costs_no_other_its_record(
    world, example, settings, database_url
):
    if is_sqlite(database_url):
        pytest.skip("SQLite does not enforce a column's length, the fault this test provokes")
    first, *others = await claimed_deliveries(world, example, notices=2)
    unstorable = Outcome(False, 500, 5, "x" * 500)  # longer than last_error's 200 characters
    ended = [(first, unstorable)] + [(c, Outcome(True, 204, 5)) for c in others]
    states = await record_outcomes(world.sessions, settings, ended, clock=now)
    assert states == [None, "delivered", "delivered", "delivered"]
    rows = {
        str(delivery_id): (state, attempts)
        for delivery_id, state, attempts in await world.sql(
            "SELECT id, state, attempts FROM delivery"
        )
    }
    # The one not recorded stays leased and pending: when its lease runs out it is sent again.
    assert rows.pop(str(first.delivery_id)) == ("pending", 0)
    assert sorted(rows.values()) == [("delivered", 1)] * 3


async def test_two_outcomes_of_one_delivery_in_a_batch_record_only_the_lease_holders(
    world, example, settings
):
    """A lease that ran out and was claimed again: both attempts may end before a pass. Only the
    claim holding the lease records its attempt, as settling them one at a time would."""
    first, *_ = await claimed_deliveries(world, example, notices=1)
    stale = replace(first, lease_token=uuid.uuid4())  # the earlier claim, its lease taken since
    ended = [(stale, Outcome(False, 500, 5, "non-2xx response")), (first, Outcome(True, 204, 5))]
    assert await record_outcomes(world.sessions, settings, ended, clock=now) == [
        None,
        "delivered",
    ]
    [(attempts,)] = await world.sql("SELECT count(*) FROM delivery_attempt")
    [(logged,)] = await world.sql("SELECT count(*) FROM audit_entry WHERE action LIKE 'delivery.%'")
    assert attempts == 1
    assert logged == 3  # queued twice (two recipients), succeeded once
