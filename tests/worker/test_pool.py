"""What the delivery worker does with what receivers answer, and how it shares itself out.

A real loopback receiver and the real databases; the worker's clock is injected where a test
needs a retry to fall due, and run_forever runs as it does in production where a test is about
its pool or its wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from app.messages import leases
from app.messages.webhook import MAX_RESPONSE_BYTES, new_secret
from app.storage.db import is_sqlite
from app.storage.models import Message, Subscription
from app.worker import loop as worker_module
from app.worker import transactions as worker_tx
from app.worker.loop import http_client, run_once
from app.worker.pool import (
    ROUNDS_AHEAD,
    Pace,
    claims_ahead,
    lease_lasts,
    lease_renewal_due,
    still_ready,
)
from tests.helpers.receiver import running_receiver
from tests.helpers.worker import replace_settings, subscribe, worker


async def once(world, settings, at: datetime | None = None) -> int:
    async with http_client() as client:
        return await run_once(
            world.sessions,
            client,
            settings,
            data_keys=world.data_keys,
            clock=(lambda: at) if at else (lambda: datetime.now(UTC)),
        )


async def wait_until(condition) -> None:
    """Poll until condition() holds; the deadline is a guard against hanging, not a timing."""
    async with asyncio.timeout(20):
        while not await condition():  # noqa: ASYNC110 - a database condition, not an event
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def slow_and_fast(world, example, delay: float):
    """N07 subscribed at a receiver answering after `delay`, SMS-LEEDS at one answering at once;
    four notices posted, so four deliveries wait for each."""
    with running_receiver(delay=delay) as slow, running_receiver() as fast:
        await subscribe(world, "N07", slow.url)
        await subscribe(world, "SMS-LEEDS", fast.url)
        for _ in range(4):
            assert (await world.post_notice(example)).status_code == 202
        yield slow, fast


async def test_a_slow_endpoint_does_not_hold_up_another_recipient(world, example, settings):
    settings = replace_settings(settings, worker_subscription_concurrency=1, worker_concurrency=8)
    async with slow_and_fast(world, example, delay=1.5) as (slow, fast):
        async with worker(world, settings):
            await asyncio.to_thread(fast.wait_for, 4, 20)
            # Every fast delivery is done while the slow endpoint has had one at a time.
            slow_seen = len(slow.requests)
        assert slow_seen <= 2, slow_seen
    delivered = await world.sql(
        "SELECT count(*) FROM delivery d JOIN subscription s ON s.id = d.subscription_id"
        " JOIN organisation o ON o.id = s.organisation_id"
        " WHERE o.code = 'SMS-LEEDS' AND d.state = 'delivered'"
    )
    assert delivered[0][0] == 4


async def test_a_fast_recipients_outcomes_are_recorded_while_a_slow_ones_attempt_runs(
    world, example, settings
):
    """A pass is due once most of what was claimed ahead has started; until then an ended
    attempt waits at most RECORD_WITHIN_SECONDS. Here the slow endpoint's claims wait, so
    without that bound the fast one's outcomes (and its next claim) would wait for it."""
    settings = replace_settings(settings, worker_subscription_concurrency=1, worker_poll_seconds=30)
    async with slow_and_fast(world, example, delay=3.0) as (slow, fast), worker(world, settings):

        async def fast_ones_recorded() -> bool:
            rows = await world.sql(
                "SELECT count(*) FROM delivery d"
                " JOIN subscription s ON s.id = d.subscription_id"
                f" WHERE s.url = '{fast.url}' AND d.state = 'delivered'"
            )
            return rows[0][0] == 4

        await wait_until(fast_ones_recorded)
        assert slow.requests == []  # its first attempt is still under way (3 s)


def test_a_pass_is_due_when_most_of_the_ready_started_or_more_may_be_due() -> None:
    pace = Pace()
    pace.passed(8, more_due=False)
    pace.started = 5
    assert not pace.due(3)
    pace.started = 6  # three quarters of the 8 it left ready
    assert pace.due(2)
    # A trickle: the last claim took all that was due, and it has all started. Its outcomes
    # wait for the next notification's pass or the timer, not a pass of their own.
    pace.passed(0, more_due=False)
    assert not pace.due(0)
    # The last claim took all the room it had: more may be due, so claim again at once.
    pace.passed(0, more_due=True)
    assert pace.due(0)
    pace.passed(4, more_due=True)
    assert not pace.due(4)


def test_claims_ahead_are_rounds_of_attempts_renewed_before_they_could_not_start(settings) -> None:
    def ahead(lease: float, cap: int) -> int:
        changes = {"delivery_lease_seconds": lease, "worker_subscription_concurrency": cap}
        return claims_ahead(replace_settings(settings, **changes))

    # Rounds of attempts, however short the lease: the leases are renewed while they wait.
    assert ahead(60, 4) == ahead(30, 4) == ahead(600, 4) == 4 * ROUNDS_AHEAD
    assert ahead(60, 1) == ROUNDS_AHEAD
    now = datetime(2026, 1, 1, tzinfo=UTC)
    lease, attempt = timedelta(seconds=60), timedelta(seconds=15)
    item = replace(CLAIMED, leased_until=now + lease)
    assert not lease_renewal_due(item, now, lease=lease, whole_attempt=attempt)
    assert not lease_renewal_due(
        item, now + timedelta(seconds=22), lease=lease, whole_attempt=attempt
    )  # 38 s left
    assert lease_renewal_due(
        item, now + timedelta(seconds=23), lease=lease, whole_attempt=attempt
    )  # 37 s left
    assert not lease_renewal_due(
        replace(item, leased_until=None), now, lease=lease, whole_attempt=attempt
    )
    for lease_s, attempt_s in [(60, 15), (30, 15), (2, 1), (600, 60)]:
        lease, attempt = timedelta(seconds=lease_s), timedelta(seconds=attempt_s)
        item = replace(CLAIMED, leased_until=now + lease)
        due = next(
            now + timedelta(seconds=t / 10)
            for t in range(lease_s * 10)
            if lease_renewal_due(
                item, now + timedelta(seconds=t / 10), lease=lease, whole_attempt=attempt
            )
        )
        # Due with half the way from a whole lease down to a whole attempt still to go.
        assert lease_lasts(item, due + (lease - attempt) / 2 - timedelta(seconds=0.2), attempt)


async def test_claims_waiting_longer_than_a_lease_keep_it_and_are_each_sent_once(
    world, example, settings, caplog, monkeypatch
):
    """Claims run further ahead than a lease lasts when a receiver is slow: each pass renews the
    leases of those still waiting, so none waits its lease out. Renewals are slowed here (the
    real transaction, after a pause), so attempts end and start others while one runs: what
    started meanwhile must not be queued again, or it is sent twice."""
    real_renew = worker_module.renew

    async def slow_renew(*args):
        await asyncio.sleep(0.3)
        return await real_renew(*args)

    monkeypatch.setattr(worker_module, "renew", slow_renew)
    renewals: list[tuple[int, int]] = []  # (waiting when a renewal came back, asked about)

    def noted(ready, asked, kept):
        renewals.append((len(ready), len(asked)))
        return still_ready(ready, asked, kept)

    monkeypatch.setattr(worker_module, "still_ready", noted)
    settings = replace_settings(
        settings,
        worker_subscription_concurrency=1,
        webhook_timeout_seconds=1,
        delivery_lease_seconds=2,
        worker_poll_seconds=0.1,
    )
    caplog.set_level(logging.WARNING, logger="exchange.worker")
    with running_receiver(delay=0.4) as slow:
        await subscribe(world, "N07", slow.url)
        for _ in range(8):
            assert (await world.post_notice(example)).status_code == 202
        async with worker(world, settings):
            await asyncio.to_thread(slow.wait_for, 8, 20)  # 3.2 s of sends: past the lease
    sent = [request.headers["webhook-id"] for request in slow.requests]
    assert len(sent) == len(set(sent)) == 8
    assert "lease" not in caplog.text and "given up" not in caplog.text, caplog.text
    # Some renewal came back with fewer waiting than it asked about: attempts started meanwhile.
    assert any(waiting < asked for waiting, asked in renewals), renewals
    rows = await world.sql("SELECT state, count(*) FROM delivery GROUP BY state")
    assert rows == [("delivered", 8)]


async def test_renewing_extends_only_the_leases_still_held(world, example):
    """Not a lease another worker took since, nor one whose message was withdrawn meanwhile."""
    await subscribe(world, "N07", "http://127.0.0.1:9/hook")
    for _ in range(3):
        await world.post_notice(example)
    now = datetime.now(UTC)

    async def claim(at: datetime) -> list[leases.Claimed]:
        async with world.sessions() as session, session.begin():
            return await leases.claim_due(
                session, world.data_keys, now=at, limit=10, lease=timedelta(hours=1)
            )

    first = await claim(now)
    async with world.sessions() as session, session.begin():
        await leases.release(session, first[:1])
    assert [c.delivery_id for c in await claim(now)] == [first[0].delivery_id]  # another's now
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Message).where(Message.id == first[2].message_id).values(withdrawn_at=now)
        )
    until = now + timedelta(hours=2)
    kept = await worker_tx.renew(world.sessions, first, until)
    assert [(c.delivery_id, c.leased_until) for c in kept] == [(first[1].delivery_id, until)]
    # At 90 minutes the other claim's lease (one hour) has run out; the renewed one has not
    # (and the withdrawn message's delivery is withheld, never claimed).
    again = await claim(now + timedelta(minutes=90))
    assert [c.delivery_id for c in again] == [first[0].delivery_id]
    # Nor one whose subscription has stopped since.
    async with world.sessions() as session, session.begin():
        await session.execute(update(Subscription).values(status="disabled"))
    assert await worker_tx.renew(world.sessions, kept, until + timedelta(hours=1)) == []


def test_what_started_while_a_renewal_ran_is_not_queued_again() -> None:
    token = uuid.uuid4()
    started, renewed, lost, claimed_since = (
        replace(CLAIMED, delivery_id=uuid.uuid4(), lease_token=token) for _ in range(4)
    )
    asked = [started, renewed, lost]
    until = datetime(2026, 1, 1, tzinfo=UTC)
    kept = [replace(started, leased_until=until), replace(renewed, leased_until=until)]
    ready = [renewed, lost, claimed_since]  # `started` left for an attempt during the renewal
    assert still_ready(ready, asked, kept) == [kept[1], claimed_since]
    # The same delivery claimed again (a new lease) is not the claim that was asked about.
    again = replace(lost, lease_token=uuid.uuid4())
    assert still_ready([again], asked, kept) == [again]


async def test_a_claim_takes_no_more_of_one_subscription_than_its_cap(world, example):
    busy, _ = await subscribe(world, "N07", "http://127.0.0.1:9/busy")
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/other")
    for _ in range(5):
        await world.post_notice(example)
    now = datetime.now(UTC)
    async with world.sessions() as session, session.begin():
        claimed = await leases.claim_due(
            session,
            world.data_keys,
            now=now,
            limit=10,
            lease=timedelta(minutes=1),
            in_flight={uuid.UUID(busy): 1},
            per_subscription=2,
        )
    by_url = [c.url for c in claimed]
    assert by_url.count("http://127.0.0.1:9/busy") == 1  # one already in flight: room for one
    assert by_url.count("http://127.0.0.1:9/other") == 2


@pytest.mark.postgres
async def test_a_new_message_wakes_a_listening_worker_at_once(world, example, settings):
    if is_sqlite(settings.database_url):
        pytest.skip("SQLite has no LISTEN/NOTIFY: its workers poll")
    settings = replace_settings(settings, worker_poll_seconds=60)
    with running_receiver() as receiver:
        await subscribe(world, "N07", receiver.url)
        async with worker(world, settings):

            async def listening() -> bool:
                rows = await world.sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'"
                )
                return rows[0][0] > 0

            await wait_until(listening)
            await asyncio.sleep(0.2)  # let the worker's first pass end and its wait begin
            assert (await world.post_notice(example)).status_code == 202
            # Far sooner than the 60 s poll: only the notification can have woken it.
            await asyncio.to_thread(receiver.wait_for, 1, 15)


async def test_a_gone_endpoint_disables_its_subscription_and_its_deliveries_wait(
    world, example, settings
):
    with running_receiver(then=410) as receiver:
        subscription_id, _ = await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        assert await once(world, settings) == 1
        async with world.sessions() as session:
            subscription = await session.get(Subscription, uuid.UUID(subscription_id))
            assert (subscription.status, subscription.disabled_reason) == ("disabled", "gone")
        assert ("subscription.disabled",) in await world.sql(
            "SELECT action FROM audit_entry WHERE action = 'subscription.disabled'"
        )
        # Later messages are queued for it but not sent while it stays disabled.
        await world.post_notice(example)
        later = datetime.now(UTC) + timedelta(days=1)
        assert await once(world, settings, later) == 0
        assert len(receiver.requests) == 1
        states = await world.sql("SELECT state FROM delivery")
        assert sorted(s for (s,) in states) == ["pending", "pending"]
        # Re-enabled, both go out.
        receiver.then = 204
        async with world.sessions() as session, session.begin():
            subscription = await session.get(Subscription, uuid.UUID(subscription_id))
            subscription.status, subscription.disabled_reason = "active", None
        assert await once(world, settings, later) == 2
    assert {r.answered for r in receiver.requests[1:]} == {204}


async def test_retry_after_lengthens_the_wait(world, example, settings):
    with running_receiver(then=503) as receiver:
        receiver.answer_headers = {"retry-after": "600"}
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        now = datetime.now(UTC)
        assert await once(world, settings, now) == 1
    [(next_attempt_at,)] = await world.sql("SELECT next_attempt_at FROM delivery")
    # The schedule says 5 s (give or take its jitter); the receiver asked for 10 minutes.
    assert abs(as_utc(next_attempt_at) - (now + timedelta(seconds=600))) < timedelta(seconds=1)


def as_utc(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.mark.parametrize(("status", "state"), [(200, "delivered"), (500, "pending")])
async def test_a_huge_answer_is_not_read_to_its_end(world, example, settings, status, state):
    with running_receiver(then=status) as receiver:
        # 32 MiB: far more than the sockets' buffers on both sides can take (a few MiB here).
        receiver.answer_body = b"x" * (MAX_RESPONSE_BYTES * 512)
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        assert await once(world, settings) == 1
    [(got, code)] = await world.sql("SELECT state, last_status_code FROM delivery")
    assert (got, code) == (state, status)
    # The sender stopped reading past its bound and hung up: the rest of the answer never left.
    assert receiver.answer_bytes_sent < len(receiver.answer_body) // 2


async def test_a_redirect_is_recorded_as_one(world, example, settings):
    with running_receiver(then=307) as receiver:
        receiver.answer_headers = {"location": "http://169.254.169.254/"}
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        assert await once(world, settings) == 1
    [(error,)] = await world.sql("SELECT error FROM delivery_attempt")
    assert error == "redirect (not followed)"


async def test_both_secrets_sign_during_a_rotation_overlap_and_only_the_new_after(
    world, example, settings
):
    with running_receiver(then=500) as receiver:
        subscription_id, old = await subscribe(world, "N07", receiver.url)
        new = new_secret()
        await world.post_notice(example)
        now = datetime.now(UTC)
        async with world.sessions() as session, session.begin():
            subscription = await session.get(Subscription, uuid.UUID(subscription_id))
            subscription.secret, subscription.previous_secret = new, old
            subscription.previous_secret_expires_at = now + timedelta(hours=1)
        assert await once(world, settings, now) == 1
        assert await once(world, settings, now + timedelta(hours=2)) == 1
        during, after = receiver.wait_for(2)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):  # a receiver holding either secret accepts it
        Webhook(secret).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(after.body, after.headers)


def test_settings_refuse_a_lease_shorter_than_two_attempts(settings) -> None:
    with pytest.raises(ValueError, match="twice"):
        type(settings)(**{**settings.model_dump(), "delivery_lease_seconds": 20})
    with pytest.raises(ValueError, match="7 days"):
        type(settings)(**{**settings.model_dump(), "webhook_retry_schedule": "5,0"})


async def test_a_stopping_worker_releases_the_claims_it_had_not_started(world, example, settings):
    """Claims run ahead of the pool: what is still waiting for room when the worker stops is due
    again at once (for any worker), not when its lease runs out."""
    settings = replace_settings(settings, worker_subscription_concurrency=1)
    with running_receiver(delay=1.0) as slow:
        await subscribe(world, "N07", slow.url)
        for _ in range(3):
            assert (await world.post_notice(example)).status_code == 202
        async with worker(world, settings):
            await asyncio.to_thread(slow.wait_for, 1, 20)
    rows = await world.sql(
        "SELECT state, leased_until, lease_token FROM delivery d"
        " JOIN subscription s ON s.id = d.subscription_id WHERE s.url = '" + slow.url + "'"
    )
    assert ("delivered", None, None) in rows
    assert all(leased is None and token is None for _, leased, token in rows), rows


async def test_released_claims_are_due_again_at_once(world, example):
    await subscribe(world, "N07", "http://127.0.0.1:9/hook")
    for _ in range(2):
        await world.post_notice(example)

    async def claim() -> list[leases.Claimed]:
        async with world.sessions() as session, session.begin():
            return await leases.claim_due(
                session, world.data_keys, now=datetime.now(UTC), limit=10, lease=timedelta(hours=1)
            )

    first = await claim()
    assert len(first) == 2 and await claim() == []
    async with world.sessions() as session, session.begin():
        await leases.release(session, first)
    assert {c.delivery_id for c in await claim()} == {c.delivery_id for c in first}


def test_a_claim_starts_only_while_its_lease_outlasts_a_whole_attempt() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    item = replace(CLAIMED, leased_until=now + timedelta(seconds=60))
    assert lease_lasts(item, now, timedelta(seconds=15))
    assert lease_lasts(item, now + timedelta(seconds=44), timedelta(seconds=15))
    assert not lease_lasts(item, now + timedelta(seconds=45), timedelta(seconds=15))
    assert lease_lasts(replace(item, leased_until=None), now, timedelta(seconds=15))


CLAIMED = leases.Claimed(
    delivery_id=uuid.uuid4(),
    lease_token=uuid.uuid4(),
    attempts=0,
    subscription_id=uuid.uuid4(),
    url="https://example.org/hook",
    secrets=(new_secret(),),
    kind="disclosure",
    message_id=uuid.uuid4(),
    notice_id=uuid.uuid4(),
    supersedes=None,
    recipient_organisation_id=uuid.uuid4(),
    sequence=1,
    jws="a.b.c",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)
