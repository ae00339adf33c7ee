"""A message that a later one replaced says so wherever it is served (issue 22, item 6).

An amendment's disclosure, or a cancellation, names in `supersedes` the message it replaces;
the replaced message shows `superseded_by` in the inbox, in GET /v1/messages/{id} and in the
prison's view, and is no longer sent. One stopped before any attempt to deliver it is revoked
as well (never sent: the inbox withholds it); one that may have reached its recipient keeps its
JWS. On both databases, with the real worker delivering to a loopback receiver.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from app.messages import leases
from app.worker.loop import deliver as attempt_and_record
from app.worker.loop import http_client, run_once
from app.worker.transactions import claim
from tests.helpers.messages import inbox, subscribe, verified
from tests.helpers.notices import CONCERNS, NO_SMS, amend, cancel, edited, ok, sent, tracked
from tests.helpers.receiver import running_receiver

LATER = timedelta(days=2)  # past every retry the first attempts scheduled


async def work(world, settings, at: datetime | None = None) -> int:
    """One worker pass at this time (or now): how many deliveries it attempted."""
    at = at or datetime.now(UTC)
    async with http_client() as client:
        return await run_once(
            world.sessions, client, settings, data_keys=world.data_keys, clock=lambda: at
        )


async def message(world, message_id: str, code: str = "N07") -> dict[str, Any]:
    response = await world.api.get(f"/v1/messages/{message_id}", headers=await world.headers(code))
    assert response.status_code == 200, response.text
    return response.json()


def recipient(status: dict[str, Any], code: str, kind: str = "disclosure") -> dict[str, Any]:
    """The prison's view of one recipient's message of this kind."""
    [found] = [
        r for r in status["recipients"] if r["organisation_code"] == code and r["kind"] == kind
    ]
    return found


def events(receiver, secret: str) -> list[dict[str, Any]]:
    """Every event the receiver got, its signature checked, as (answer, data)."""
    return [
        (r.answered, Webhook(secret).verify(r.body, r.headers)["data"]) for r in receiver.requests
    ]


# What became of N07's first message before the amendment: its deliveries' states and attempts
# after it, and whether it was revoked (never sent, so withheld) or kept (it may have reached N07).
FATES = {
    "never attempted": ([("revoked", 0)], True),
    "attempted and failed": ([("superseded", 1)], False),
    "delivered": ([("delivered", 1)], False),
    "pulled from the inbox": ([], False),
}


@pytest.mark.parametrize("fate", list(FATES))
async def test_a_replaced_message_is_marked_superseded_wherever_it_is_served(
    world, api, example, settings, fate
):
    deliveries, revoked = FATES[fate]
    with running_receiver(script=[500] if fate == "attempted and failed" else []) as receiver:
        secret = None
        if fate != "pulled from the inbox":
            secret = await subscribe(world, "N07", f"{receiver.url}/N07")
        first = ok(await world.post_notice(example))
        v1 = sent(first)["N07"]
        if fate in ("attempted and failed", "delivered"):
            assert await work(world, settings) == 1
        if fate == "pulled from the inbox":
            assert [m["id"] for m in await inbox(world, "N07")] == [v1]
        second = ok(
            await amend(world, first["id"], edited(example, {"/safeguarding/concerns": CONCERNS}))
        )
        v2 = sent(second)["N07"]

        old, new = await inbox(world, "N07")
        assert (old["id"], old["superseded_by"], old["supersedes"]) == (v1, v2, None)
        assert (new["id"], new["superseded_by"], new["supersedes"]) == (v2, None, v1)
        assert await message(world, v1) == old and await message(world, v2) == new
        if revoked:  # never sent anywhere: withheld from now on
            assert old["jws"] is None and old["revoked_at"] is not None
        else:  # it may have reached N07: kept as it was, marked
            assert old["revoked_at"] is None
            _, claims = await verified(api, old["jws"], "N07")
            assert claims["jti"] == v1 and "supersedes" not in claims
        _, claims = await verified(api, new["jws"], "N07")
        assert (claims["jti"], claims["supersedes"]) == (v2, v1)

        # The prison sees the same: the first message superseded, its deliveries stopped.
        was = recipient(await tracked(world, first["id"]), "N07")
        assert (was["message_id"], was["superseded_by"]) == (v1, v2)
        assert [(d["state"], d["attempts"]) for d in was["deliveries"]] == deliveries
        now = recipient(await tracked(world, second["id"]), "N07")
        assert (now["message_id"], now["supersedes"], now["superseded_by"]) == (v2, v1, None)

        # The replacement's webhook names the message it replaces; the replaced one is never
        # sent again, however long the worker runs.
        seen = len(receiver.requests)
        assert await work(world, settings) == (1 if secret else 0)
        assert await work(world, settings, datetime.now(UTC) + LATER) == 0
        if secret:
            receiver.wait_for(seen + 1)
            got = events(receiver, secret)
            assert [data["message_id"] for _, data in got][seen:] == [v2]
            assert got[-1][1]["supersedes"] == v1
            _, claims = await verified(api, got[-1][1]["jws"], "N07")
            assert claims["supersedes"] == v1


async def test_a_message_in_flight_when_it_is_replaced_is_not_tried_again(world, example, settings):
    """The attempt under way goes on (it may reach the receiver), but a failure is not retried:
    the replacement is what the recipient gets."""
    with running_receiver(script=[500]) as receiver:
        secret = await subscribe(world, "N07", f"{receiver.url}/N07")
        first = ok(await world.post_notice(example))
        [item] = await claim(
            world.sessions, settings, world.data_keys, now=datetime.now(UTC), limit=10
        )
        second = ok(await amend(world, first["id"], example))
        v1, v2 = sent(first)["N07"], sent(second)["N07"]
        async with http_client() as client:
            state = await attempt_and_record(
                world.sessions, client, settings, item=item, clock=lambda: datetime.now(UTC)
            )
        assert state == "pending"  # failed, with a retry planned when it was recorded
        assert await work(world, settings, datetime.now(UTC) + LATER) == 1  # v2 only
        assert [data["message_id"] for _, data in events(receiver, secret)] == [v1, v2]
    was = recipient(await tracked(world, first["id"]), "N07")
    assert [(d["state"], d["attempts"]) for d in was["deliveries"]] == [("superseded", 1)]
    old, _ = await inbox(world, "N07")
    assert (old["superseded_by"], old["revoked_at"]) == (v2, None) and old["jws"]


async def test_a_chain_of_amendments_links_each_message_to_the_next(world, example, settings):
    with running_receiver() as receiver:
        await subscribe(world, "N07", f"{receiver.url}/N07")
        versions = [ok(await world.post_notice(example))]
        for n in range(2):
            assert await work(world, settings) == 1  # each version's message delivered
            body = edited(example, {"/safeguarding/concerns": f"{CONCERNS} ({n})"})
            versions.append(ok(await amend(world, versions[-1]["id"], body)))
        assert await work(world, settings) == 1
    ids = [sent(v)["N07"] for v in versions]
    items = await inbox(world, "N07")
    assert [(m["id"], m["supersedes"], m["superseded_by"]) for m in items] == [
        (ids[0], None, ids[1]),
        (ids[1], ids[0], ids[2]),
        (ids[2], ids[1], None),
    ]
    assert all(m["jws"] and m["revoked_at"] is None for m in items)  # each delivered: kept
    acknowledged = await world.api.post(  # what it gave may have been acted on: it may say so
        f"/v1/messages/{ids[0]}/acknowledgements",
        json={"status": "received"},
        headers=await world.headers("N07"),
    )
    assert acknowledged.status_code == 201, acknowledged.text


async def test_a_cancellation_after_a_delivered_amendment_supersedes_it(world, example):
    first = ok(await world.post_notice(example))
    second = ok(await amend(world, first["id"], example))
    third = ok(await cancel(world, second["id"], "release_cancelled"))
    v1, v2, c = sent(first)["N07"], sent(second)["N07"], sent(third, "cancellation")["N07"]
    items = await inbox(world, "N07")
    assert [(m["id"], m["kind"], m["supersedes"], m["superseded_by"]) for m in items] == [
        (v1, "disclosure", None, v2),
        (v2, "disclosure", v1, c),
        (c, "cancellation", v2, None),
    ]
    status = await tracked(world, second["id"])
    assert recipient(status, "N07")["superseded_by"] == c
    assert recipient(status, "N07", "cancellation")["supersedes"] == v2


@pytest.mark.parametrize("change", ["cancellation", "amendment not shared"])
async def test_a_recipient_holding_an_earlier_version_is_told_when_the_latest_was_never_sent(
    world, api, example, settings, change
):
    """The amendment's message was revoked before any attempt, so the recipient still holds the
    first version's: it is that one the cancellation names, and that one it supersedes."""
    with running_receiver() as receiver:
        secret = await subscribe(world, "SMS-LEEDS", f"{receiver.url}/SMS-LEEDS")
        first = ok(await world.post_notice(example))
        assert await work(world, settings) == 1  # SMS-LEEDS holds the first version's message
        second = ok(await amend(world, first["id"], example))  # not yet attempted ...
        if change == "cancellation":  # ... when the notice is cancelled, or amended again
            third = ok(await cancel(world, second["id"], "release_cancelled"))
            reason = "release_cancelled"
        else:
            third = ok(await amend(world, second["id"], edited(example, NO_SMS)))
            reason = "amended_not_shared"
        v1, v2 = sent(first)["SMS-LEEDS"], sent(second)["SMS-LEEDS"]
        told = sent(third, "cancellation")
        assert "SMS-LEEDS" in told
        c = told["SMS-LEEDS"]
        assert await work(world, settings) == 1  # the cancellation; v2 never goes
        got = events(receiver, secret)
    assert [data["message_id"] for _, data in got] == [v1, c]
    assert got[-1][1]["supersedes"] == v1
    _, claims = await verified(api, got[-1][1]["jws"], "SMS-LEEDS")
    assert (claims["supersedes"], claims["reason"]) == (v1, reason)
    items = await inbox(world, "SMS-LEEDS")
    assert [(m["id"], m["supersedes"], m["superseded_by"]) for m in items] == [
        (v1, None, c),  # the latest message naming it: the one that stands
        (v2, v1, None),
        (c, v1, None),
    ]
    assert items[1]["jws"] is None and items[1]["revoked_at"]  # never sent
    assert items[0]["jws"] and items[0]["revoked_at"] is None  # held: kept


async def test_a_superseded_message_is_not_sent_again_on_request(world, example, settings):
    """Redelivery refuses it, naming its replacement; recovery sends the replacement only."""
    with running_receiver(script=[500]) as receiver:
        response = await world.api.post(
            "/v1/subscriptions",
            json={"url": f"{receiver.url}/N07"},
            headers=await world.headers("N07"),
        )
        assert response.status_code == 201, response.text
        subscription, secret = response.json()["id"], response.json()["secret"]
        since = datetime.now(UTC) - timedelta(minutes=1)
        first = ok(await world.post_notice(example))
        assert await work(world, settings) == 1  # failed
        second = ok(await amend(world, first["id"], example))
        assert await work(world, settings) == 1  # the replacement, delivered
        v1, v2 = sent(first)["N07"], sent(second)["N07"]
        headers = await world.headers("N07")

        listed = await world.api.get(
            f"/v1/subscriptions/{subscription}/deliveries",
            params={"state": "superseded"},
            headers=headers,
        )
        assert listed.status_code == 200, listed.text
        assert [(d["message_id"], d["attempt_count"]) for d in listed.json()["items"]] == [(v1, 1)]

        refused = await world.api.post(f"/v1/messages/{v1}/redeliver", headers=headers)
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert (problem["reason"], problem["superseded_by"]) == ("superseded", v2)

        recovered = await world.api.post(
            f"/v1/subscriptions/{subscription}/recover",
            json={"since": since.strftime("%Y-%m-%dT%H:%M:%SZ")},
            headers=headers,
        )
        assert recovered.status_code == 202, recovered.text
        assert (recovered.json()["queued"], recovered.json()["complete"]) == (1, True)
        assert await work(world, settings) == 1
        receiver.wait_for(3)
        assert [data["message_id"] for _, data in events(receiver, secret)] == [v1, v2, v2]


async def test_a_claim_waiting_to_be_sent_is_given_up_once_its_message_is_replaced(
    world, example, settings
):
    await subscribe(world, "N07", "http://127.0.0.1:9/N07")
    first = ok(await world.post_notice(example))
    [item] = await claim(world.sessions, settings, world.data_keys, now=datetime.now(UTC), limit=10)
    async with world.sessions() as session, session.begin():  # still current: renewed
        assert await leases.renew(session, [item], datetime.now(UTC) + LATER) == {
            (item.delivery_id, item.lease_token)
        }
    ok(await amend(world, first["id"], example))
    async with world.sessions() as session, session.begin():
        assert await leases.renew(session, [item], datetime.now(UTC) + LATER) == set()


async def test_a_recipient_shared_with_again_gets_a_disclosure_replacing_its_cancellation(
    world, example
):
    first = ok(await world.post_notice(example))
    second = ok(await amend(world, first["id"], edited(example, NO_SMS)))
    third = ok(await amend(world, second["id"], example))
    v1, v3 = sent(first)["SMS-LEEDS"], sent(third)["SMS-LEEDS"]
    c = sent(second, "cancellation")["SMS-LEEDS"]
    items = await inbox(world, "SMS-LEEDS")
    assert [(m["id"], m["kind"], m["supersedes"], m["superseded_by"]) for m in items] == [
        (v1, "disclosure", None, c),
        (c, "cancellation", v1, v3),
        (v3, "disclosure", c, None),
    ]
