"""A recall closes the release: a former recipient learns nothing of it, and no engagement or
at_risk deadline opens afterwards."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.acknowledgements import acknowledge, dated, released
from tests.helpers.consents import consent, record
from tests.helpers.notices import amend
from tests.helpers.updates import (
    PROBATION,
    SERVICE,
    from_service,
    release,
    share,
    shared,
)


async def test_a_withdrawn_service_learns_nothing_of_a_later_recall(world, example, clock):
    """The service's disclosure was withdrawn with its consent: it must learn nothing more of the
    person. Its POST is answered with the day of probation's recall (checked before whether the
    caller holds anything that stands)."""
    notice = await release(world, example, clock.today)
    await record(world, consent("substance_misuse_service", "refused"))
    day = clock.today - timedelta(days=1)
    recall = {"recall": {"date": day.isoformat(), "kind": "recalled"}}
    await shared(world, notice["sent"][PROBATION], recall, code=PROBATION)

    response = await share(world, notice["sent"][SERVICE], from_service(clock.today))
    assert response.status_code == 409, response.text
    text = response.text
    assert day.isoformat() not in text and "recalled" not in text, text


async def _recalled(world, example, clock):
    notice = await release(world, example, clock.today)
    recall = {"recall": {"date": clock.today.isoformat(), "kind": "recalled"}}
    await shared(world, notice["sent"][PROBATION], recall, code=PROBATION)
    return notice


async def test_an_amendment_after_a_recall_opens_no_engagement_deadline(world, example, clock):
    """A recall stops the release's engagement deadlines; the prison's amendment afterwards
    decides the release again and its disclosures start fresh engagement (and receipt) clocks,
    as if the person were still out: the overdue scan will alert probation about a person in
    custody."""

    notice = await _recalled(world, example, clock)
    body = released(example, clock.today - timedelta(days=10))
    body["safeguarding"]["concerns"] = "Plans to visit his children on the day after release."
    changed = await amend(world, notice["id"], body)
    assert changed.status_code in (202, 409), changed.text
    open_ = await world.sql(
        "SELECT kind FROM deadline WHERE kind IN ('engagement', 'at_risk') "
        "AND met_at IS NULL AND stopped_at IS NULL"
    )
    assert open_ == [], open_


async def test_a_missed_appointment_after_a_recall_raises_no_at_risk(world, example, clock):
    """After the recall the service can still acknowledge `did_not_attend` on its disclosure:
    it raises a fresh at_risk deadline for a release the recall closed."""

    notice = await _recalled(world, example, clock)
    day = clock.today - timedelta(days=1)
    answered = await acknowledge(
        world, notice["sent"][SERVICE], dated("did_not_attend", day), code=SERVICE
    )
    assert answered.status_code in (201, 409), answered.text
    open_ = await world.sql(
        "SELECT kind FROM deadline WHERE kind = 'at_risk' AND met_at IS NULL AND stopped_at IS NULL"
    )
    assert open_ == [], open_
