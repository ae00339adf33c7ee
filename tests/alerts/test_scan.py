"""The overdue scan (issue 24, item 3) on both databases, through the API and the real scan:
who is told of each deadline passed, with a signed event verified by an independent JOSE
library; once, however many scans run; nothing while it is met or no longer stands; a missed
appointment told at once; and lateness shown.

A deadline "passes" here because the scan is asked at an instant after it (its `now`), or, where
the API must see it passed (an acknowledgement recorded late), because its row is moved into
the past: no test waits a day, and every day comes from the suite's clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.storage.models import Deadline
from app.worker.transactions import alert_overdue
from tests.helpers.acknowledgements import acknowledge, dated, notice_status, recorded, released
from tests.helpers.consents import post, recipients
from tests.helpers.messages import inbox, verified
from tests.helpers.notices import cancel

ALERTS = {"receipt_overdue", "engagement_overdue", "engagement_at_risk"}


async def scan(world) -> int:
    """One run of the worker's overdue scan, now."""
    return await alert_overdue(world.sessions, world.signing, now=datetime.now(UTC))


async def passed(world, kind: str, code: str | None = None) -> None:
    """Move the deadlines of that kind (owed by `code`, or by anyone) a minute into the past,
    as if their day had ended: the scan, and the API, see them passed."""
    owned = [] if code is None else [Deadline.organisation_id == world.ids[code]]
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(Deadline)
            .where(Deadline.kind == kind, *owned)
            .values(due_at=datetime.now(UTC) - timedelta(minutes=1))
        )


async def alerts(world, code: str) -> list[dict[str, Any]]:
    """The alerts in an organisation's inbox, each with its claims verified (PyJWT, JWKS)."""
    from app.messages.sequencer import number

    async with world.sessions() as session, session.begin():
        await number(session)
    found = []
    for item in await inbox(world, code):
        if item["kind"] in ALERTS:
            header, claims = await verified(world.api, item["jws"], code)
            found.append({"kind": item["kind"], "typ": header["typ"], **claims})
    return found


async def deadlines(world) -> list[tuple[str, str, Any, Any, Any]]:
    return await world.sql(
        "SELECT d.kind, o.code, d.met_at, d.stopped_reason, d.alerted_at FROM deadline d "
        "JOIN organisation o ON o.id = d.organisation_id ORDER BY d.kind, o.code"
    )


async def test_a_receipt_overdue_tells_the_recipient_and_the_prison_once(world, example, clock):
    accepted = await post(world, released(example, clock.today))
    sent = recipients(accepted)
    assert await scan(world) == 0  # nothing due yet
    await passed(world, "receipt")
    assert await scan(world) == 2  # both receipts (engagement is 21 days away)
    assert await scan(world) == 0  # each looked at once
    for code in ("N07", "SMS-LEEDS"):
        (alert,) = await alerts(world, code)
        assert alert["kind"] == "receipt_overdue" and alert["typ"] == "receipt-overdue+jwt"
        assert alert["deadline"]["kind"] == "receipt" and alert["deadline"]["owed_by"] == code
        assert alert["concerning"] == sent[code]
        assert alert["notice_id"] == accepted["id"] and alert["series_id"] == accepted["series_id"]
        assert set(alert) == {
            "kind",
            "typ",
            "iss",
            "aud",
            "iat",
            "jti",
            "notice_id",
            "deadline",
            "concerning",
            "series_id",
        }  # ids, codes and days only
    to_prison = await alerts(world, "MDI")
    assert sorted(a["deadline"]["owed_by"] for a in to_prison) == ["N07", "SMS-LEEDS"]
    states = {
        r["organisation_code"]: r["deadlines"]
        for r in (await notice_status_list(world, accepted["id"]))
    }
    assert [d["state"] for d in states["N07"]] == ["overdue"]
    assert states["N07"][0]["alerted_at"] is not None


async def notice_status_list(world, notice_id: str) -> list[dict[str, Any]]:
    return list((await notice_status(world, notice_id)).values())


async def test_an_acknowledgement_in_time_meets_it_and_a_late_one_is_marked(world, example, clock):
    sent = recipients(await post(world, released(example, clock.today)))
    in_time = recorded(await acknowledge(world, sent["N07"], {"status": "received"}), sent["N07"])
    assert in_time["late"] is False
    await passed(world, "receipt")
    assert await scan(world) == 1  # SMS-LEEDS's alone: N07's was met
    assert [a["deadline"]["owed_by"] for a in await alerts(world, "MDI")] == ["SMS-LEEDS"]
    late = await acknowledge(world, sent["SMS-LEEDS"], {"status": "received"}, code="SMS-LEEDS")
    assert recorded(late, sent["SMS-LEEDS"])["late"] is True
    rows = {(kind, code): rest for kind, code, *rest in await deadlines(world)}
    met, _, alerted = rows["receipt", "N07"]
    assert met is not None and alerted is None
    met, _, alerted = rows["receipt", "SMS-LEEDS"]
    assert met is not None and alerted is not None  # alerted, then met late
    assert rows["engagement", "SMS-LEEDS"] == [None, None, None]
    states = await notice_status(world, (await world.sql("SELECT id FROM release_notice"))[0][0])
    assert [d["state"] for d in states["SMS-LEEDS"]["deadlines"]] == ["met", "open"]
    assert [a["late"] for a in states["SMS-LEEDS"]["acknowledgements"]] == [True]


async def test_engagement_overdue_tells_the_service_and_probation(world, example, clock):
    accepted = await post(world, released(example, clock.today))
    sent = recipients(accepted)
    await passed(world, "engagement")
    assert await scan(world) == 1
    for code in ("SMS-LEEDS", "N07"):
        (alert,) = await alerts(world, code)
        assert alert["kind"] == "engagement_overdue"
        assert alert["deadline"]["owed_by"] == "SMS-LEEDS"
        assert alert["concerning"] == sent["SMS-LEEDS"]
        assert alert["deadline"]["due_on"] == (clock.today + timedelta(days=21)).isoformat()
    assert await alerts(world, "MDI") == []


async def test_an_attendance_in_the_window_meets_engagement(world, example, clock):
    sent = recipients(await post(world, released(example, clock.today)))
    body = dated("attended", clock.today)
    recorded(await acknowledge(world, sent["SMS-LEEDS"], body, code="SMS-LEEDS"), sent["SMS-LEEDS"])
    await passed(world, "engagement")
    assert await scan(world) == 0  # met when recorded: no longer among those to look at
    assert await alerts(world, "N07") == []


async def test_a_missed_appointment_tells_probation_at_once(world, example, clock):
    sent = recipients(await post(world, released(example, clock.today)))
    missed = dated("did_not_attend", clock.today)
    answer = recorded(
        await acknowledge(world, sent["SMS-LEEDS"], missed, code="SMS-LEEDS"), sent["SMS-LEEDS"]
    )
    assert await scan(world) == 1  # due the moment it was recorded
    (alert,) = await alerts(world, "N07")
    assert alert["kind"] == "engagement_at_risk" and alert["typ"] == "engagement-at-risk+jwt"
    assert alert["missed_appointment_date"] == answer["appointment_date"]
    assert alert["deadline"]["owed_by"] == "SMS-LEEDS"
    assert await alerts(world, "SMS-LEEDS") == []
    assert await alerts(world, "MDI") == []


async def test_a_booking_before_the_scan_takes_the_risk_back(world, example, clock):
    sent = recipients(await post(world, released(example, clock.today)))
    sms = sent["SMS-LEEDS"]
    await acknowledge(world, sms, dated("did_not_attend", clock.today), code="SMS-LEEDS")
    rebooked = dated("appointment_booked", clock.today + timedelta(days=3))
    recorded(await acknowledge(world, sms, rebooked, code="SMS-LEEDS"), sms)
    assert await scan(world) == 0
    assert await alerts(world, "N07") == []


async def test_a_cancelled_release_stops_its_deadlines(world, example, clock):
    accepted = await post(world, released(example, clock.today))
    (await cancel(world, accepted["id"], "release_cancelled")).raise_for_status()
    await passed(world, "receipt")
    await passed(world, "engagement")
    assert await scan(world) == 3  # looked at, and stopped
    for code in ("N07", "SMS-LEEDS", "MDI"):
        assert await alerts(world, code) == []
    assert {stopped for _, _, _, stopped, _ in await deadlines(world)} == {"cancelled"}
    view = await world.api.get(
        f"/v1/release-notices/{accepted['id']}", headers=await world.headers("MDI")
    )
    disclosed = [r for r in view.json()["recipients"] if r["kind"] == "disclosure"]
    assert [len(r["deadlines"]) for r in disclosed] == [1, 2]  # N07's receipt; SMS-LEEDS's two
    assert {d["state"] for r in disclosed for d in r["deadlines"]} == {"stopped"}
    logged = await world.sql("SELECT count(*) FROM audit_entry WHERE action = 'deadline.stopped'")
    assert logged[0][0] == 3


async def test_scans_side_by_side_alert_each_deadline_once(world, example, clock):
    for _ in range(3):
        await post(world, released(example, clock.today))
    await passed(world, "receipt")
    await asyncio.gather(scan(world), scan(world), scan(world))
    to_prison = await alerts(world, "MDI")
    assert len(to_prison) == 6
    assert len({a["deadline"]["id"] for a in to_prison}) == 6


async def test_a_scan_that_fails_before_commit_loses_nothing(world, example, clock):
    from app.alerts.scan import scan_due

    await post(world, released(example, clock.today))
    await passed(world, "receipt")
    with pytest.raises(RuntimeError):
        async with world.sessions() as session, session.begin():
            assert await scan_due(session, world.signing, now=datetime.now(UTC)) == 2
            raise RuntimeError("the worker stops here")
    assert await alerts(world, "MDI") == []
    assert await scan(world) == 2
    assert len(await alerts(world, "MDI")) == 2


async def test_the_worker_alerts_on_its_own(world, example, clock, settings):
    from tests.helpers.worker import worker

    await post(world, released(example, clock.today))
    await passed(world, "receipt", "N07")
    async with worker(world, settings):
        for _ in range(200):
            if await alerts(world, "N07"):
                break
            await asyncio.sleep(0.05)
    (alert,) = await alerts(world, "N07")
    assert alert["kind"] == "receipt_overdue"


async def test_a_consent_withdrawn_stops_what_relied_on_it(world, example, clock):
    from tests.helpers.consents import SMS, carried, withdraw

    await post(world, released(example, clock.today))
    record = await carried(world, SMS)
    assert (await withdraw(world, record["id"])).status_code == 200
    await passed(world, "receipt", "SMS-LEEDS")
    await passed(world, "engagement")
    assert await scan(world) == 2
    assert await alerts(world, "SMS-LEEDS") == [] and await alerts(world, "N07") == []
    stopped = {(k, c): why for k, c, _, why, _ in await deadlines(world)}
    assert stopped[("receipt", "SMS-LEEDS")] == stopped[("engagement", "SMS-LEEDS")] == "withdrawn"
    assert stopped[("receipt", "N07")] is None  # N07's still stands, and is not yet due
