"""An update's `attended` meets the engagement deadline of the disclosure in force."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.acknowledgements import released
from tests.helpers.notices import amend
from tests.helpers.updates import (
    SERVICE,
    from_service,
    received,
    release,
    shared,
)


async def test_an_attended_update_meets_the_amended_disclosures_engagement(world, example, clock):
    """The service's update said `attended` (meets its engagement deadline). The prison amends
    the notice: the service's new disclosure starts a new engagement deadline. The service
    shares the attendance again about the new disclosure, but the day is dropped as "known
    already" for the release, so nothing can meet the new deadline through updates: it goes
    overdue and probation is alerted that a person who attended has not engaged."""

    notice = await release(world, example, clock.today)
    day = clock.today - timedelta(days=2)
    events = [{"event": "attended", "date": day.isoformat()}]
    await shared(world, notice["sent"][SERVICE], from_service(clock.today, engagement=events))
    body = released(example, clock.today - timedelta(days=10))
    body["safeguarding"]["concerns"] = "Plans to visit his children on the day after release."
    changed = await amend(world, notice["id"], body)
    assert changed.status_code == 202, changed.text
    latest = (await received(world, SERVICE, "disclosure"))[-1]["id"]

    await shared(world, latest, from_service(clock.today, engagement=events))
    open_ = await world.sql(
        "SELECT kind FROM deadline WHERE kind = 'engagement' AND met_at IS NULL "
        "AND stopped_at IS NULL"
    )
    assert open_ == [], open_
