"""The default windows as a disclosure states them: receipt by the end of the next working day
in England and Wales, engagement 21 days after release (issue 24, item 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.deadlines.calendar import today, working_days_after
from tests.helpers.acknowledgements import released
from tests.helpers.consents import post
from tests.helpers.messages import inbox, verified


async def test_the_default_windows(world, example, clock):
    before = today(datetime.now(UTC))
    await post(world, released(example, clock.today))
    after = today(datetime.now(UTC))
    (item,) = await inbox(world, "SMS-LEEDS")
    _, claims = await verified(world.api, item["jws"], "SMS-LEEDS")
    assert claims["deadlines"]["receipt_due"] in {
        working_days_after(day, 1).isoformat() for day in (before, after)
    }
    assert claims["deadlines"]["engagement_due"] == (clock.today + timedelta(days=21)).isoformat()
