"""Faults a review of delivery found, each pinned where it was: a worker that died after
sending, a receiver's odd Retry-After, a DELETE racing intake, 0005 on old deletions, and a
redelivery asked for while an attempt is under way."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from sqlalchemy import select, update

from app.messages import leases, outbox, outcomes
from app.messages.webhook import Outcome
from app.storage import migrate
from app.storage.db import is_sqlite
from app.storage.models import Delivery, Message
from app.worker.loop import http_client, run_once
from tests.helpers.consents import SMS, carried, withdraw
from tests.helpers.receiver import running_receiver
from tests.helpers.worker import until_waiting_or_done


async def subscribe(world, code: str, url: str) -> str:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def once(world, settings, at: datetime | None = None) -> int:
    async with http_client() as client:
        return await run_once(
            world.sessions,
            client,
            settings,
            data_keys=world.data_keys,
            clock=lambda: at or datetime.now(UTC),
        )


async def claim(world, now: datetime, lease: timedelta) -> list[leases.Claimed]:
    async with world.sessions() as session, session.begin():
        return await leases.claim_due(session, world.data_keys, now=now, limit=10, lease=lease)


async def test_a_message_whose_worker_died_after_claiming_it_may_be_held(world, example):
    """Claimed, perhaps sent, never settled: a withdrawal must tell the recipient, not treat the
    message as unseen and withhold it silently."""
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/hooks")
    assert (await world.post_notice(example)).status_code == 202
    [_] = await claim(world, datetime.now(UTC), timedelta(milliseconds=10))
    await asyncio.sleep(0.05)  # the worker died; its lease has run out
    response = await withdraw(world, (await carried(world, SMS))["id"])
    assert response.status_code == 200, response.text
    kinds = await world.sql(
        "SELECT m.kind, m.revoked_at IS NULL FROM message m JOIN organisation o"
        " ON o.id = m.recipient_organisation_id WHERE o.code = 'SMS-LEEDS' ORDER BY m.sequence"
    )
    assert [(k, bool(unrevoked)) for k, unrevoked in kinds] == [
        ("disclosure", True),  # not revoked as if never seen ...
        ("consent_withdrawn", True),  # ... and the recipient is told
    ]


async def test_a_retry_after_of_unicode_digits_is_ignored_not_a_crash(world, example, settings):
    with running_receiver(then=503) as receiver:
        receiver.answer_headers = {"retry-after": "\u00b2"}  # the latin-1 byte 0xB2: "²"
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        now = datetime.now(UTC)
        assert await once(world, settings, now) == 1
    [(state, attempts, leased)] = await world.sql(
        "SELECT state, attempts, leased_until IS NOT NULL FROM delivery"
    )
    assert (state, attempts, bool(leased)) == ("pending", 1, False)  # recorded, on the schedule


async def test_a_delivery_queued_while_its_subscription_is_deleted_dies_with_it(
    world, example, database_url
):
    assert (await world.post_notice(example)).status_code == 202  # a message for N07, no delivery
    subscription_id = await subscribe(world, "N07", "http://127.0.0.1:9/hooks")
    n07 = await world.headers("N07")

    async with world.sessions() as session, session.begin():
        message = await session.scalar(
            select(Message).where(Message.recipient_organisation_id == world.ids["N07"])
        )
        await outbox.enqueue(session, [message], datetime.now(UTC))  # reads it active ...
        deleting = asyncio.create_task(  # ... and a DELETE starts before this commits
            world.api.delete(f"/v1/subscriptions/{subscription_id}", headers=n07)
        )
        await until_waiting_or_done(world, database_url, deleting)
    assert (await deleting).status_code == 204
    if not is_sqlite(database_url):  # FOR SHARE made the DELETE wait, and kill what was queued
        rows = await world.sql(
            "SELECT s.status, d.state FROM delivery d JOIN subscription s"
            " ON s.id = d.subscription_id"
        )
        assert rows == [("deleted", "dead")], rows
    # A DELETE again settles anything that slipped past the first (SQLite reads without a lock).
    assert (
        await world.api.delete(f"/v1/subscriptions/{subscription_id}", headers=n07)
    ).status_code == 204
    rows = await world.sql(
        "SELECT s.status, d.state FROM delivery d JOIN subscription s ON s.id = d.subscription_id"
    )
    assert rows == [("deleted", "dead")], rows  # the one delivery queued, settled


async def test_0005_kills_the_pending_deliveries_of_what_delete_disabled(
    world, example, database_url, settings
):
    subscription_id = await subscribe(world, "N07", "http://127.0.0.1:9/hooks")
    assert (await world.post_notice(example)).status_code == 202
    config = migrate.config(database_url)
    try:
        await asyncio.to_thread(command.downgrade, config, "0004")
        async with world.sessions() as session, session.begin():  # what DELETE did before 0005
            await session.execute(sa.text("UPDATE subscription SET status = 'disabled'"))
    finally:  # 0009 reads the stored notices: it needs the data keys that sealed them
        keys = settings.sealing_keys_dir
        await asyncio.to_thread(migrate.upgrade, database_url, data_keys_dir=keys)
    async with world.sessions() as session:
        [delivery] = (await session.scalars(select(Delivery))).all()
        assert (str(delivery.subscription_id), delivery.state) == (subscription_id, "dead")
        assert delivery.last_error == "subscription deleted"


async def test_a_redelivery_asked_for_during_an_attempt_is_not_undone_by_its_outcome(
    world, example
):
    await subscribe(world, "N07", "http://127.0.0.1:9/hooks")
    assert (await world.post_notice(example)).status_code == 202
    async with world.sessions() as session, session.begin():
        await session.execute(update(Delivery).values(attempts=4))  # deep in its back-off
    now = datetime.now(UTC)
    [item] = await claim(world, now, timedelta(seconds=60))  # attempt 5 under way
    asked = await world.api.post(
        f"/v1/messages/{item.message_id}/redeliver", headers=await world.headers("N07")
    )
    assert asked.status_code == 202, asked.text
    async with world.sessions() as session, session.begin():  # the attempt under way fails
        await outcomes.settle(session, item, Outcome(False, 500, 10, "non-2xx response"), now=now)
    async with world.sessions() as session:
        due = (
            await session.scalars(
                select(Delivery.id).where(
                    Delivery.state == "pending",
                    Delivery.next_attempt_at <= now + timedelta(minutes=1),
                )
            )
        ).all()
    # The asked-for sending is still due now, whatever the attempt's outcome planned.
    assert [str(d) for d in due] == asked.json()["deliveries"]
    assert uuid.UUID(asked.json()["deliveries"][0]) != item.delivery_id
