"""Corrections and consent: a notice posted again after a cancellation in error, two notices
carrying the same consent, a consent carried again, a message stopped twice in one change, and
an in-flight delivery of a withdrawn message. Each once went wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.messages import leases, outcomes
from app.messages.webhook import Outcome
from tests.helpers.consents import (
    SMS,
    carried,
    change,
    history,
    log,
    post,
    recipients,
    states,
    withdraw,
    without_sms,
)
from tests.helpers.messages import inbox, subscribe
from tests.helpers.worker import work


async def test_reposting_a_notice_cancelled_in_error_keeps_the_consent_it_carries(world, example):
    """Cancel as entered_in_error (say a wrong date), post the corrected notice: it carries the
    decision of the voided record, which counts as never made, so it is made a record again."""
    first = await post(world, example)
    await change(world, first["id"], "cancellation", {"reason": "entered_in_error"})
    again = recipients(await post(world, example))
    assert (await history(world))["standing"].get(SMS) is True
    assert again["SMS-LEEDS"] is not None


async def test_cancelling_one_notice_in_error_leaves_another_notices_consent_alone(world, example):
    """Two genuine notices carry the same record (made from the first, carried by both);
    cancelling the first as entered_in_error leaves it resting on the second, so it stands and
    the second notice's disclosure is not withdrawn from its recipient."""
    one = await post(world, example)
    two = recipients(await post(world, example))
    await change(world, one["id"], "cancellation", {"reason": "entered_in_error"})
    assert (await history(world))["standing"].get(SMS) is True
    [item] = [m for m in await inbox(world, "SMS-LEEDS") if m["id"] == two["SMS-LEEDS"]]
    assert item["jws"] is not None


async def test_an_amendment_that_carries_a_dropped_consent_again_restores_it(world, example):
    first = await post(world, example)
    second = await change(world, first["id"], "amendments", without_sms(example))
    third = recipients(await change(world, second["id"], "amendments", example))
    assert (await history(world))["standing"].get(SMS) is True
    assert third["SMS-LEEDS"] is not None


async def test_a_message_is_revoked_once(world, example):
    """An amendment that drops the consent: consent_lost revokes the earlier disclosure
    (consent_withdrawn), then the amendment's own retract revokes it again (superseded)."""
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/hooks")
    first = await post(world, example)
    await change(world, first["id"], "amendments", without_sms(example))
    revoked = [m for m, _ in await log(world, "message.revoked")]
    assert len(revoked) == len(set(revoked)), await log(world, "message.revoked")


async def test_a_withdrawn_messages_delivery_in_flight_that_fails_is_settled(
    world, example, settings
):
    """Leased when the consent is withdrawn, then the attempt fails: the delivery goes back to
    pending, and from then on every claim leases it and skips it (jws_of is None): it stays
    'pending' for ever (until the notice is purged)."""
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/hooks")
    sent = recipients(await post(world, example))["SMS-LEEDS"]
    async with world.sessions() as session, session.begin():
        [claimed] = await leases.claim_due(
            session, world.data_keys, now=datetime.now(UTC), limit=10, lease=timedelta(minutes=5)
        )
    assert (await withdraw(world, (await carried(world, SMS))["id"])).status_code == 200
    async with world.sessions() as session, session.begin():
        await outcomes.settle(session, claimed, Outcome(False, 500, 3), now=datetime.now(UTC))
    for hours in (1, 5, 30, 200):
        await work(world, settings, datetime.now(UTC) + timedelta(hours=hours))
    from tests.helpers.consents import hexid

    assert "pending" not in (await states(world))[("SMS-LEEDS", hexid(sent))]
