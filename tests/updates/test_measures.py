"""A care update's `attended` event feeds the continuity-of-care measure as an `attended`
acknowledgement does, on both databases: the release counts as engaged, once, whether the
service acknowledged the day as well or not."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from app.deadlines.calendar import today as today_in
from app.deadlines.rules import Windows
from app.reports import continuity, reading
from app.reports.grouping import Asked
from tests.helpers.acknowledgements import acknowledge, dated
from tests.helpers.updates import SERVICE, from_service, release, shared


async def categories(world, asked: Asked) -> Counter[str]:
    async with world.sessions() as session:
        read = list(await reading.releases(session, asked))
    return Counter(continuity.classify(r, Windows(), today_in(datetime.now(UTC))) for r in read)


async def test_an_attended_update_counts_towards_continuity_once(world, example, clock):
    asked = Asked(clock.today - timedelta(days=30), clock.today)
    only_update = await release(world, example, clock.today, days_ago=25)
    both = await release(world, example, clock.today, days_ago=25)
    day = clock.today - timedelta(days=20)  # within the window of 21 days
    attended = [{"event": "attended", "date": day.isoformat()}]
    await shared(world, only_update["sent"][SERVICE], from_service(day, engagement=attended))
    answered = await acknowledge(world, both["sent"][SERVICE], dated("attended", day), code=SERVICE)
    assert answered.status_code == 201, answered.text
    await shared(world, both["sent"][SERVICE], from_service(day, engagement=attended))
    assert await categories(world, asked) == Counter({continuity.ENGAGED: 2})
    days = await world.sql("SELECT attended_days FROM engagement_outcome")
    assert sorted(d for (d,) in days) == [day.isoformat()] * 2  # each release's day once
