"""Care update documents that say nothing, or say the same thing twice, are refused (422)."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.updates import (
    PROBATION,
    SERVICE,
    from_service,
    release,
    share,
)


async def test_duplicate_engagement_events_are_refused(world, example, clock):
    notice = await release(world, example, clock.today)
    day = (clock.today - timedelta(days=1)).isoformat()
    events = [{"event": "did_not_attend", "date": day}, {"event": "did_not_attend", "date": day}]
    await world.headers(SERVICE)
    before = await world.counts()
    response = await share(
        world, notice["sent"][SERVICE], from_service(clock.today, engagement=events)
    )
    assert response.status_code == 422, response.text
    assert "/engagement/1" in response.text
    assert await world.counts() == before


async def test_an_update_of_nulls_says_nothing(world, example, clock):
    """`{"recall": null}` is a section set to nothing: the update says nothing and must be 422,
    not a 202 that sends the service an empty signed message."""
    notice = await release(world, example, clock.today)
    await world.headers(PROBATION)
    before = await world.counts()
    response = await share(world, notice["sent"][PROBATION], {"recall": None}, code=PROBATION)
    assert response.status_code == 422 and "/recall" in response.text, response.text
    assert await world.counts() == before


async def test_a_null_section_is_named_and_an_nps_family_named_twice_is_refused(
    world, example, clock
):
    notice = await release(world, example, clock.today)
    await world.headers(SERVICE)
    before = await world.counts()
    body = {**from_service(clock.today), "clinical_note": None}
    response = await share(world, notice["sent"][SERVICE], body)
    assert response.status_code == 422 and "/clinical_note" in response.text, response.text
    twice = ["synthetic_cannabinoid", "synthetic_cannabinoid"]
    body = {**from_service(clock.today), "assessment": {"nps_categories": twice}}
    response = await share(world, notice["sent"][SERVICE], body)
    assert response.status_code == 422, response.text
    assert "/assessment/nps_categories/1" in response.text, response.text
    assert await world.counts() == before
