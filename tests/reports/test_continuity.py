"""The continuity-of-care report through the API, on both databases: each category as the
reads and the pure classifier put a release in it, the window's edge, an acknowledgement of an
older version, cancelled releases, who may read what, suppression and provisional groups.

Dates come from the suite's clock: a release 25 days ago has its window (21 days) closed
whether today in England and Wales is the clock's day or the next.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from app.deadlines.calendar import today as today_in
from app.deadlines.rules import Windows
from app.reports import continuity, reading
from app.reports.grouping import Asked
from tests.helpers.acknowledgements import released
from tests.helpers.notices import amend, cancel
from tests.helpers.reports import (
    notice,
    release,
    service_says,
    without_consent,
)

WINDOWS = Windows()


async def categories(world, asked: Asked) -> Counter[str]:
    today = today_in(datetime.now(UTC))
    async with world.sessions() as session:
        read = list(await reading.releases(session, asked))
    return Counter(continuity.classify(r, WINDOWS, today) for r in read)


async def test_each_release_falls_in_exactly_one_category(world, example, clock):
    closed = clock.today - timedelta(days=25)  # its window ended 4 days ago
    asked = Asked(clock.today - timedelta(days=30), clock.today)
    seen: Counter[str] = Counter()

    async def expect(category: str) -> None:
        seen[category] += 1
        assert await categories(world, asked) == seen, category

    day = lambda n: closed + timedelta(days=n)  # noqa: E731
    await service_says(world, await release(world, example, closed), "attended", day(21))
    await expect(continuity.ENGAGED)  # day 21 counts
    await service_says(world, await release(world, example, closed), "attended", day(22))
    await expect("appointment_outside_window")  # day 22 does not
    await service_says(world, await release(world, example, closed), "appointment_booked", day(30))
    await expect("appointment_outside_window")
    await release(world, example, closed)
    await expect("no_acknowledgement")
    await service_says(world, await release(world, example, closed), "accepted")
    await expect("received_no_appointment")
    await service_says(world, await release(world, example, closed), "did_not_attend", day(3))
    await expect("did_not_attend")
    await service_says(world, await release(world, example, closed), "declined")
    await expect("declined")
    await service_says(world, await release(world, example, closed), "appointment_booked", day(9))
    await expect("appointment_not_recorded")
    await release(world, without_consent(example), closed)
    await expect("no_consent")
    await release(world, example, clock.today - timedelta(days=2))
    await expect("still_in_window")
    # Engaged takes precedence over a later missed appointment; the latest decides the rest.
    accepted = await release(world, example, closed)
    await service_says(world, accepted, "attended", day(1))
    await service_says(world, accepted, "did_not_attend", day(8))
    await expect(continuity.ENGAGED)
    accepted = await release(world, example, closed)
    await service_says(world, accepted, "appointment_booked", day(2))
    await service_says(world, accepted, "declined")
    await expect("declined")


async def test_an_acknowledgement_of_an_older_version_counts(world, example, clock):
    closed = clock.today - timedelta(days=25)
    body = notice(example, closed)
    accepted = (await world.post_notice(body)).json()
    await service_says(world, accepted, "attended", closed + timedelta(days=2))
    amended = await amend(world, accepted["id"], body)
    assert amended.status_code == 202, amended.text
    assert amended.json()["version"] == 2
    asked = Asked(closed, closed)
    assert await categories(world, asked) == Counter({continuity.ENGAGED: 1})


async def test_a_cancelled_release_is_out(world, example, clock):
    closed = clock.today - timedelta(days=25)
    accepted = await release(world, example, closed)
    await release(world, example, closed)
    assert (await cancel(world, accepted["id"], "release_cancelled")).status_code == 202
    assert await categories(world, Asked(closed, closed)) == Counter({"no_acknowledgement": 1})


async def test_an_amendment_moving_the_release_date_moves_the_window(world, example, clock):
    """The attended days are kept, not only the earliest: which of them fall in the window is
    decided by the release date in force when the report is read."""
    closed = clock.today - timedelta(days=27)
    day = lambda n: closed + timedelta(days=n)  # noqa: E731
    body = notice(example, closed)
    accepted = (await world.post_notice(body)).json()
    await service_says(world, accepted, "attended", day(1))
    await service_says(world, accepted, "attended", day(24))
    asked = Asked(closed - timedelta(days=10), clock.today)
    assert await categories(world, asked) == Counter({continuity.ENGAGED: 1})
    moved = await amend(world, accepted["id"], released(body, day(4)))
    assert moved.status_code == 202, moved.text
    # Day 1 is now before the release, day 24 within its window (day 4 to day 25).
    assert await categories(world, asked) == Counter({continuity.ENGAGED: 1})
    moved = await amend(world, moved.json()["id"], released(body, day(2)))
    assert moved.status_code == 202, moved.text
    # Day 1 before the release, day 24 after its window (day 2 to day 23).
    assert await categories(world, asked) == Counter({"appointment_outside_window": 1})
