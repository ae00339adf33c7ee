"""Delivery recovery: each attempt shown, a message sent again, everything since a time sent again.

Against a real loopback receiver, with the worker run by hand on its injected clock.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from app.access.identity import Caller, Scope
from app.messages import recovery
from app.storage.log_tables import AuditEntry
from app.storage.models import Delivery, Message
from app.worker.loop import http_client, purge_expired, run_once
from tests.helpers.problems import assert_problem
from tests.helpers.receiver import running_receiver
from tests.helpers.subscriptions import subscribe


async def post(world, example: dict[str, Any]) -> str:
    """Post the example notice; N07's message id."""
    response = await world.post_notice(example)
    assert response.status_code == 202, response.text
    [n07] = [r for r in response.json()["recipients"] if r["organisation_code"] == "N07"]
    return n07["message_id"]


async def deliver(world, settings, at: datetime | None = None) -> int:
    at = at or datetime.now(UTC)
    async with http_client() as client:
        return await run_once(
            world.sessions, client, settings, data_keys=world.data_keys, clock=lambda: at
        )


async def deliveries(world, subscription_id: str, code: str = "N07", **params: Any) -> Any:
    return await world.api.get(
        f"/v1/subscriptions/{subscription_id}/deliveries",
        params=params,
        headers=await world.headers(code),
    )


async def redeliver(world, message_id: str, code: str = "N07", **body: Any) -> Any:
    return await world.api.post(
        f"/v1/messages/{message_id}/redeliver", json=body, headers=await world.headers(code)
    )


async def recover(world, subscription_id: str, code: str = "N07", **body: Any) -> Any:
    return await world.api.post(
        f"/v1/subscriptions/{subscription_id}/recover", json=body, headers=await world.headers(code)
    )


async def stored_deliveries(world) -> list[Delivery]:
    async with world.sessions() as session:
        return list(
            (
                await session.scalars(select(Delivery).order_by(Delivery.created_at, Delivery.id))
            ).all()
        )


async def set_message(world, message_id: str, **values: Any) -> None:
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Message).where(Message.id == uuid.UUID(message_id)).values(**values)
        )


# --- GET /v1/subscriptions/{id}/deliveries ------------------------------------------------


async def test_the_deliveries_show_every_attempt_of_a_failing_then_succeeding_delivery(
    world, example, settings
):
    with running_receiver(script=[503]) as receiver:
        subscription = await subscribe(world, url=receiver.url)
        message_id = await post(world, example)
        now = datetime.now(UTC)
        assert await deliver(world, settings, now) == 1
        pending = (await deliveries(world, subscription["id"])).json()["items"]
        assert (
            await deliver(world, settings, now + timedelta(seconds=6)) == 1
        )  # 5 s, give or take 10%
        assert [r.answered for r in receiver.wait_for(2)] == [503, 204]

    [waiting] = pending
    assert (waiting["state"], waiting["attempt_count"]) == ("pending", 1)
    assert waiting["next_attempt_at"] is not None and waiting["last_error"] == "non-2xx response"
    response = await deliveries(world, subscription["id"])
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["message_id"] == message_id and item["kind"] == "disclosure"
    assert item["sequence"] == 1 and item["state"] == "delivered"
    assert (item["attempt_count"], item["next_attempt_at"]) == (2, None)
    assert item["delivered_at"] is not None and item["last_error"] is None
    failed, succeeded = item["attempts"]
    assert (failed["status_code"], failed["error"]) == (503, "non-2xx response")
    assert (succeeded["status_code"], succeeded["error"]) == (204, None)
    assert failed["attempted_at"] < succeeded["attempted_at"]
    assert all(isinstance(a["latency_ms"], int) and a["latency_ms"] >= 0 for a in item["attempts"])
    assert set(item) == {  # ids, states and times: never a payload
        "id",
        "message_id",
        "sequence",
        "kind",
        "state",
        "attempt_count",
        "next_attempt_at",
        "delivered_at",
        "last_error",
        "attempts",
    }
    assert "jws" not in response.text


async def test_deliveries_are_newest_first_in_pages_and_filtered_by_state(world, example):
    subscription = await subscribe(world)
    first, second = await post(world, example), await post(world, example)
    await set_message(world, first, revoked_at=datetime.now(UTC))
    async with world.sessions() as session, session.begin():  # as a withdrawal leaves it
        await session.execute(
            update(Delivery)
            .where(Delivery.message_id == uuid.UUID(first))
            .values(state="revoked", last_error="consent_withdrawn")
        )

    page = (await deliveries(world, subscription["id"], limit=1)).json()
    assert [i["message_id"] for i in page["items"]] == [second] and page["next_cursor"] == "1"
    rest = (await deliveries(world, subscription["id"], limit=1, cursor="1")).json()
    assert [i["message_id"] for i in rest["items"]] == [first]
    last = (await deliveries(world, subscription["id"], limit=1, cursor="2")).json()
    assert last == {"items": [], "next_cursor": None}
    revoked = (await deliveries(world, subscription["id"], state="revoked")).json()["items"]
    assert [(i["message_id"], i["next_attempt_at"]) for i in revoked] == [(first, None)]
    assert (await deliveries(world, subscription["id"], state="dead")).json()["items"] == []


async def test_deliveries_are_only_the_owners_to_see(world):
    subscription = await subscribe(world)
    assert_problem(await deliveries(world, subscription["id"], "N99"), 404)
    assert_problem(await deliveries(world, str(uuid.uuid4())), 404)
    assert_problem(await deliveries(world, subscription["id"], "AUDIT"), 403)
    body = assert_problem(await deliveries(world, subscription["id"], state="lost"), 422)
    assert [e["pointer"] for e in body["errors"]] == ["/state"]


# --- POST /v1/messages/{id}/redeliver ----------------------------------------------------


async def test_a_delivered_message_is_sent_again_with_the_same_webhook_id(world, example, settings):
    with running_receiver() as receiver:
        secret = (await subscribe(world, url=receiver.url))["secret"]
        message_id = await post(world, example)
        assert await deliver(world, settings) == 1
        response = await redeliver(world, message_id)
        assert response.status_code == 202, response.text
        assert await deliver(world, settings) == 1
        first, again = receiver.wait_for(2)

    [fresh] = response.json()["deliveries"]
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == message_id
    assert first.body == again.body
    Webhook(secret).verify(again.body, again.headers)
    stored = await stored_deliveries(world)
    assert [(str(d.id) == fresh, d.state, d.attempts) for d in stored] == [
        (False, "delivered", 1),
        (True, "delivered", 1),
    ]
    async with world.sessions() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "message.redelivery_requested")
        )
    assert entry is not None and str(entry.message_id) == message_id
    assert entry.details["deliveries"] == [fresh]
    assert (entry.details["made_due"], entry.details["added"]) == (0, 1)


async def test_a_pending_delivery_is_made_due_now_and_keeps_its_attempts(world, example, settings):
    with running_receiver(script=[500]) as receiver:
        subscription = await subscribe(world, url=receiver.url)
        message_id = await post(world, example)
        assert await deliver(world, settings) == 1
        assert await deliver(world, settings) == 0  # its retry is due in 5 s
        response = await redeliver(world, message_id, subscription_id=subscription["id"])
        assert response.status_code == 202, response.text
        assert await deliver(world, settings) == 1
        assert [r.answered for r in receiver.wait_for(2)] == [500, 204]
    [delivery] = await stored_deliveries(world)
    assert response.json()["deliveries"] == [str(delivery.id)]
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


async def test_only_the_named_subscription_gets_it_again(world, example):
    named = await subscribe(world, url="http://127.0.0.1:9/named")
    other = await subscribe(world, url="http://127.0.0.1:9/other")
    message_id = await post(world, example)
    before = await stored_deliveries(world)
    response = await redeliver(world, message_id, subscription_id=named["id"])
    assert response.status_code == 202, response.text
    [made_due] = [d for d in before if str(d.subscription_id) == named["id"]]
    assert response.json()["deliveries"] == [str(made_due.id)]
    after = await stored_deliveries(world)
    assert len(after) == len(before) == 2
    # Already overdue (due since it was queued): it keeps its place in the queue.
    assert [d.next_attempt_at for d in after] == [d.next_attempt_at for d in before]
    everywhere = (await redeliver(world, message_id)).json()["deliveries"]
    assert sorted(everywhere) == sorted(str(d.id) for d in before)
    assert {str(d.subscription_id) for d in before} == {named["id"], other["id"]}


async def test_concurrent_redeliveries_queue_one_delivery_not_one_each(world, example, settings):
    with running_receiver() as receiver:
        await subscribe(world, url=receiver.url)
        message_id = await post(world, example)
        assert await deliver(world, settings) == 1
        await world.headers("N07")
        answers = await asyncio.gather(*(redeliver(world, message_id) for _ in range(5)))
        assert [a.status_code for a in answers] == [202] * 5, [a.text for a in answers]
        assert len({tuple(a.json()["deliveries"]) for a in answers}) == 1
        assert [d.state for d in await stored_deliveries(world)] == ["delivered", "pending"]
        assert receiver.wait_for(1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"revoked_at": True}, "revoked"), ({"withdrawn_at": True}, "withdrawn"), ({}, "purged")],
)
async def test_a_message_that_may_no_longer_be_sent_is_409_saying_why(
    world, example, settings, change, reason
):
    await subscribe(world)
    message_id = await post(world, example)
    if change:
        await set_message(world, message_id, **{k: datetime.now(UTC) for k in change})
    else:
        await purge_expired(world.sessions, settings, now=datetime.now(UTC) + timedelta(days=91))
    before = await world.counts()
    body = assert_problem(await redeliver(world, message_id), 409)
    assert body["reason"] == reason and reason in body["detail"]
    assert await world.counts() == before


async def test_redeliver_rejections_write_nothing(world, example):
    subscription = await subscribe(world)
    disabled = await subscribe(world, url="http://127.0.0.1:9/disabled")
    others = await subscribe(world, "N99")
    message_id = await post(world, example)
    patch = await world.api.patch(
        f"/v1/subscriptions/{disabled['id']}",
        json={"status": "disabled"},
        headers=await world.headers("N07"),
    )
    assert patch.status_code == 200, patch.text
    for code in ("N99", "AUDIT"):
        await world.headers(code)
    before = await world.counts()

    assert_problem(await redeliver(world, message_id, "N99"), 404)
    assert_problem(await redeliver(world, str(uuid.uuid4())), 404)
    assert_problem(await redeliver(world, message_id, "AUDIT"), 403)
    assert_problem(await redeliver(world, message_id, subscription_id=others["id"]), 404)
    body = assert_problem(await redeliver(world, message_id, subscription_id=disabled["id"]), 409)
    assert body["subscription_status"] == "disabled"
    assert_problem(await redeliver(world, message_id, subscription_id="not-an-id"), 422)
    assert await world.counts() == before

    await world.api.delete(
        f"/v1/subscriptions/{subscription['id']}", headers=await world.headers("N07")
    )
    before = await world.counts()
    body = assert_problem(await redeliver(world, message_id), 409)
    assert body["title"] == "No active subscription"
    assert await world.counts() == before


# --- POST /v1/subscriptions/{id}/recover --------------------------------------------------


async def created_at(world, message_id: str) -> datetime:
    async with world.sessions() as session:
        return (await session.get_one(Message, uuid.UUID(message_id))).created_at


async def test_recover_sends_exactly_the_window_again(world, example, settings):
    with running_receiver() as receiver:
        subscription = await subscribe(world, url=receiver.url)
        before, first, withdrawn, second, after = [await post(world, example) for _ in range(5)]
        assert await deliver(world, settings) == 5  # then the receiver loses its database
        await set_message(world, withdrawn, withdrawn_at=datetime.now(UTC))
        since, until = await created_at(world, first), await created_at(world, after)
        response = await recover(
            world, subscription["id"], since=since.isoformat(), until=until.isoformat()
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"queued": 2, "complete": True, "next_since": None}
        assert await deliver(world, settings) == 2
        again = receiver.wait_for(7)[5:]
    assert sorted(r.headers["webhook-id"] for r in again) == sorted([first, second])
    assert before not in {r.headers["webhook-id"] for r in again}
    async with world.sessions() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "subscription.recovery_requested")
        )
    assert entry.details == {
        "subscription_id": subscription["id"],
        "since": since.isoformat(),
        "until": until.isoformat(),
        "messages": 2,
        "made_due": 0,
        "added": 2,
        "complete": True,
    }

    open_ended = await recover(world, subscription["id"], since=since.isoformat())
    assert open_ended.json()["queued"] == 3  # first, second, after


def caller_of(world, code: str = "N07") -> Caller:
    scopes = frozenset({Scope.SUBSCRIPTIONS_WRITE.value})
    return Caller("test", world.ids[code], code, "probation_provider", scopes)


async def test_recover_goes_in_bounded_batches_that_continue_exactly(world, example):
    messages = [await post(world, example) for _ in range(5)]
    subscription = uuid.UUID((await subscribe(world))["id"])  # after them: no deliveries yet
    since, queued, calls = await created_at(world, messages[0]), 0, 0
    while True:
        async with world.sessions() as session, session.begin():
            done = await recovery.recover(
                session,
                caller_of(world),
                subscription,
                since=since,
                until=None,
                now=datetime.now(UTC),
                limit=2,
            )
        queued, calls = queued + done.queued, calls + 1
        if done.complete:
            break
        since = done.next_since
    assert (queued, calls) == (5, 3)
    stored = await stored_deliveries(world)
    assert sorted(str(d.message_id) for d in stored) == sorted(messages)
    assert all(d.state == "pending" and d.subscription_id == subscription for d in stored)

    # Again: each pending delivery is made due, none added.
    async with world.sessions() as session, session.begin():
        again = await recovery.recover(
            session,
            caller_of(world),
            subscription,
            since=await created_at(world, messages[0]),
            until=None,
            now=datetime.now(UTC),
        )
    assert (again.queued, again.complete) == (5, True)
    assert len(await stored_deliveries(world)) == 5


async def test_more_messages_at_one_instant_than_the_bound_are_taken_whole(world, example):
    messages = [await post(world, example) for _ in range(4)]
    instant = await created_at(world, messages[0])
    for message_id in messages[:3]:
        await set_message(world, message_id, created_at=instant)
    subscription = uuid.UUID((await subscribe(world))["id"])
    async with world.sessions() as session, session.begin():
        done = await recovery.recover(
            session,
            caller_of(world),
            subscription,
            since=instant,
            until=None,
            now=datetime.now(UTC),
            limit=2,
        )
    assert (done.queued, done.next_since) == (3, await created_at(world, messages[3]))


async def test_recover_rejections_write_nothing(world, example):
    subscription = await subscribe(world)
    disabled = await subscribe(world, url="http://127.0.0.1:9/disabled")
    await world.api.patch(
        f"/v1/subscriptions/{disabled['id']}",
        json={"status": "disabled"},
        headers=await world.headers("N07"),
    )
    await post(world, example)
    for code in ("N99", "AUDIT"):
        await world.headers(code)
    now = datetime.now(UTC)
    hour_ago = (now - timedelta(hours=1)).isoformat()
    before = await world.counts()

    future = assert_problem(
        await recover(world, subscription["id"], since=(now + timedelta(hours=1)).isoformat()), 422
    )
    assert [e["pointer"] for e in future["errors"]] == ["/since"]
    backwards = await recover(world, subscription["id"], since=hour_ago, until=hour_ago)
    assert [e["pointer"] for e in assert_problem(backwards, 422)["errors"]] == ["/since"]
    assert_problem(await recover(world, subscription["id"]), 422)
    assert_problem(await recover(world, subscription["id"], since="yesterday"), 422)
    assert_problem(await recover(world, subscription["id"], since="2026-01-01T00:00:00"), 422)
    assert_problem(await recover(world, disabled["id"], since=hour_ago), 409)
    assert_problem(await recover(world, subscription["id"], "N99", since=hour_ago), 404)
    assert_problem(await recover(world, subscription["id"], "AUDIT", since=hour_ago), 403)
    assert await world.counts() == before
