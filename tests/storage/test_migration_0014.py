"""Migration 0014 fills each release's outcome with each recipient from the acknowledgements
stored: the rows it writes are those the acknowledgement use case keeps as they arrive (an
amended release's two versions, days attended twice and out of order, another recipient's).

Migrations run their own event loop, so they are called in a thread (as in
tests/storage/test_migrations.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from alembic import command

from app.storage import migrate
from tests.helpers.notices import amend
from tests.helpers.reports import notice, service_says

OUTCOMES = """
SELECT series_id, organisation_id, latest_status, latest_appointment_date, latest_recorded_at,
       latest_acknowledgement_id, attended_days
FROM engagement_outcome ORDER BY series_id, organisation_id
"""


def sorted_days(row: Any) -> tuple[Any, ...]:
    """The row with its attended days in order (the fill lists them in any order)."""
    *rest, days = row
    return (*rest, None if days is None else ",".join(sorted(days.split(","))))


async def test_0014_fills_what_acknowledging_keeps(world, example, clock, database_url):
    closed = clock.today - timedelta(days=25)
    day = lambda n: closed + timedelta(days=n)  # noqa: E731
    body = notice(example, closed)
    first = (await world.post_notice(body)).json()
    await service_says(world, first, "attended", day(9))
    await service_says(world, first, "attended", day(2))
    amended = await amend(world, first["id"], body)
    assert amended.status_code == 202, amended.text
    await service_says(world, amended.json(), "attended", day(9))
    await service_says(world, amended.json(), "did_not_attend", day(12))
    other = (await world.post_notice(notice(example, closed))).json()
    await service_says(world, other, "received")
    kept = [sorted_days(row) for row in await world.sql(OUTCOMES)]
    assert sorted((row[2], row[-1]) for row in kept) == [
        ("did_not_attend", f"{day(2)},{day(9)}"),
        ("received", None),
    ]

    config = migrate.config(database_url)
    await world.sessions.kw["bind"].dispose()  # no pooled connection holds a table
    await asyncio.to_thread(command.downgrade, config, "0013")
    await asyncio.to_thread(command.upgrade, config, "head")
    await world.sessions.kw["bind"].dispose()
    assert [sorted_days(row) for row in await world.sql(OUTCOMES)] == kept
