"""The overdue scan (issue 24, item 3) on both databases, through the API and the real scan:
who is told of each deadline passed, with a signed event verified by an independent JOSE
library; once, however many scans run; nothing while it is met or no longer stands; a missed
appointment told at once; and lateness shown.

A deadline "passes" here because the scan is asked at an instant after it (its `now`), or, where
the API must see it passed (an acknowledgement recorded late), because its row is moved into
the past: no test waits a day, and every day comes from the suite's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.worker.transactions import alert_overdue
from tests.helpers.acknowledgements import notice_status, released
from tests.helpers.consents import post, recipients
from tests.helpers.messages import inbox, verified

ALERTS = {"receipt_overdue", "engagement_overdue", "engagement_at_risk"}


async def scan(world) -> int:
    """One run of the worker's overdue scan, now."""
    return await alert_overdue(world.sessions, world.signing, now=datetime.now(UTC))


async def passed(world, kind: str, code: str | None = None) -> None:
    """Move the deadlines of that kind (owed by `code`, or by anyone) a minute into the past,
    as if their day had ended: the scan, and the API, see them passed."""
    owner = "" if code is None else " AND organisation_id = :owner"
    await world.execute(
        f"UPDATE deadline SET due_at = :at WHERE kind = :kind{owner}",
        at=datetime.now(UTC) - timedelta(minutes=1),
        kind=kind,
        **({"owner": world.ids[code]} if code else {}),
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
