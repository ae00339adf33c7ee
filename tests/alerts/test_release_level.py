"""Engagement and an at_risk concern the release, not one message (issue 24, item 3): an
amendment does not tell the same engagement alert twice, a missed appointment recorded on an
earlier version's message is still told, one missed appointment is told once, a booking dated
after it takes it back whenever recorded, and a notice sent after its window closed owes no
engagement. (Found by a review read as an attacker would.)"""

from __future__ import annotations

from datetime import timedelta

from app.messages.sequencer import number
from tests.alerts.test_scan import alerts, passed, scan
from tests.helpers.acknowledgements import acknowledge, dated, recorded, released
from tests.helpers.consents import post, recipients
from tests.helpers.messages import inbox, verified
from tests.helpers.notices import CONCERNS, amend, edited, ok


async def _numbered(world) -> None:
    async with world.sessions() as session, session.begin():
        await number(session)


async def test_an_amendment_after_engagement_overdue_does_not_tell_it_again(world, example, clock):
    body = released(example, clock.today - timedelta(days=20))  # the window closes tomorrow
    first = await post(world, body)
    await passed(world, "engagement")
    assert await scan(world) == 1
    ok(await amend(world, first["id"], edited(body, {"/safeguarding/concerns": CONCERNS})))
    await passed(world, "engagement")
    await scan(world)
    assert [a["kind"] for a in await alerts(world, "N07")] == ["engagement_overdue"]
    assert [a["kind"] for a in await alerts(world, "SMS-LEEDS")] == ["engagement_overdue"]
    logged = await world.sql(
        "SELECT details FROM audit_entry WHERE action = 'deadline.overdue' ORDER BY id"
    )
    assert len(logged) == 2  # the amendment's deadline is looked at, and marked told


async def test_a_missed_appointment_on_an_earlier_versions_message_is_told(world, example, clock):
    body = released(example, clock.today)
    first = await post(world, body)
    earlier = recipients(first)["SMS-LEEDS"]
    ok(await amend(world, first["id"], edited(body, {"/safeguarding/concerns": CONCERNS})))
    await _numbered(world)
    missed = dated("did_not_attend", clock.today)
    recorded(await acknowledge(world, earlier, missed, code="SMS-LEEDS"), earlier)
    assert await scan(world) == 1
    assert [a["kind"] for a in await alerts(world, "N07")] == ["engagement_at_risk"]


async def test_one_missed_appointment_is_told_once(world, example, clock):
    sms = recipients(await post(world, released(example, clock.today)))["SMS-LEEDS"]
    missed = dated("did_not_attend", clock.today)
    recorded(await acknowledge(world, sms, missed, code="SMS-LEEDS"), sms)
    await scan(world)
    again = {**missed, "note": "phoned, no answer"}
    recorded(await acknowledge(world, sms, again, code="SMS-LEEDS"), sms)
    await scan(world)
    assert [a["missed_appointment_date"] for a in await alerts(world, "N07")] == [
        clock.today.isoformat()
    ]


async def test_a_booking_dated_after_the_missed_one_takes_it_back(world, example, clock):
    sms = recipients(await post(world, released(example, clock.today)))["SMS-LEEDS"]
    later = dated("appointment_booked", clock.today + timedelta(days=10))
    recorded(await acknowledge(world, sms, later, code="SMS-LEEDS"), sms)
    missed = dated("did_not_attend", clock.today)  # recorded after the booking, dated before
    recorded(await acknowledge(world, sms, missed, code="SMS-LEEDS"), sms)
    assert await scan(world) == 1  # looked at, and met by the later booking
    assert await alerts(world, "N07") == []


async def test_a_notice_sent_after_its_window_closed_owes_no_engagement(world, example, clock):
    await post(world, released(example, clock.today - timedelta(days=25)))
    (item,) = await inbox(world, "SMS-LEEDS")
    _, claims = await verified(world.api, item["jws"], "SMS-LEEDS")
    assert set(claims["deadlines"]) == {"receipt_due"}
    kinds = await world.sql("SELECT kind FROM deadline")
    assert sorted(k for (k,) in kinds) == ["receipt", "receipt"]


async def test_a_deadline_that_cannot_be_alerted_holds_none_back(world, example, clock):
    """N07's stored encryption key is broken (not a key): its alert cannot be encrypted. The
    scan logs that deadline by its id, leaves it open, and alerts the rest."""
    await post(world, released(example, clock.today))
    await world.execute(
        "UPDATE organisation SET encryption_jwk = :jwk WHERE code = 'N07'",
        jwk='{"kty": "RSA", "kid": "broken", "n": "AQAB", "e": "AQAB"}',
    )
    await passed(world, "receipt")
    assert await scan(world) == 1  # SMS-LEEDS's; N07's failed alone
    assert [a["deadline"]["owed_by"] for a in await alerts(world, "SMS-LEEDS")] == ["SMS-LEEDS"]
    still = await world.sql(
        "SELECT d.alerted_at FROM deadline d JOIN organisation o ON o.id = d.organisation_id "
        "WHERE o.code = 'N07' AND d.kind = 'receipt'"
    )
    assert still == [(None,)]
