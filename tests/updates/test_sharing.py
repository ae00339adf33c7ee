"""Care updates through the API, on both databases: a treatment service's update reaches probation
(verified with jwcrypto), clinical detail only with `treatment_to_probation`; probation's reach
the service; the walls hold; bad input is refused naming the field, with nothing stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers.consents import consent, record
from tests.helpers.updates import (
    NOTE,
    PROBATION,
    SERVICE,
    from_service,
    received,
    release,
    share,
    shared,
    verified,
    withheld,
)

TREATMENT = "treatment_to_probation"


async def test_a_services_update_reaches_probation_clinical_detail_only_with_consent(
    world, example, clock
):
    notice = await release(world, example, clock.today)
    day = clock.today - timedelta(days=3)
    answer = await shared(world, notice["sent"][SERVICE], from_service(day))
    [recipient] = answer["recipients"]
    assert (recipient["organisation_code"], recipient["kind"]) == (PROBATION, "care_update")
    assert answer["series_id"] == notice["series_id"] and answer["closes_release"] is None

    [item] = await received(world, PROBATION)
    assert item["id"] == recipient["message_id"]
    header, claims = await verified(world.api, item["jws"], PROBATION)
    assert header["typ"] == "care-update+jwt"
    assert claims["update"]["id"] == answer["id"] and claims["update"]["from"] == SERVICE
    assert claims["series_id"] == notice["series_id"]
    assert claims["disclosure"]["engagement"] == [{"event": "assessed", "date": day.isoformat()}]
    assert claims["disclosure"]["safeguarding"]["children_contact"] == "yes"
    assert "clinical_note" not in claims["disclosure"]
    assert "assessment" not in claims["disclosure"]
    assert withheld(claims) == {
        "/assessment": "consent_not_given",
        "/clinical_note": "consent_not_given",
    }
    assert claims["policy"]["sha256"] == world.signing.policy.sha256
    assert await received(world, SERVICE) == []  # never back to its author
    assert await received(world, "MDI") == []  # never to the prison

    # The person agrees, through the consent API, by the service itself.
    await record(world, consent(TREATMENT, "given"), code=SERVICE)
    again = await shared(world, notice["sent"][SERVICE], from_service(day))
    [later] = [m for m in await received(world, PROBATION) if m["id"] != item["id"]]
    assert later["id"] == again["recipients"][0]["message_id"]
    _, claims = await verified(world.api, later["jws"], PROBATION)
    assert claims["disclosure"]["clinical_note"] == NOTE
    assert claims["disclosure"]["assessment"]["nps_use_identified"] is True
    assert claims["manifest"] == []

    entries = await world.sql(
        "SELECT action, person_ref FROM audit_entry WHERE action = 'care_update.received'"
    )
    person = world.data_keys.person_ref("A1234BC")
    assert [tuple(e) for e in entries] == [("care_update.received", person)] * 2


async def test_probations_update_reaches_the_service(world, example, clock):
    notice = await release(world, example, clock.today)
    body = {
        "accommodation": {"status": "rough_sleeping"},
        "risk_to_staff": {"level": "high", "details": "Meet at the hub, in pairs."},
    }
    answer = await shared(world, notice["sent"][PROBATION], body, code=PROBATION)
    assert [r["organisation_code"] for r in answer["recipients"]] == [SERVICE]
    [item] = await received(world, SERVICE)
    _, claims = await verified(world.api, item["jws"], SERVICE)
    assert claims["disclosure"] == body
    assert claims["update"]["role"] == "probation_provider"


async def test_the_walls_hold(world, example, clock):
    notice = await release(world, example, clock.today)
    service_message = notice["sent"][SERVICE]
    body = from_service(clock.today)
    for code in ("N99", PROBATION):  # another probation provider; the other recipient
        response = await share(world, service_message, body, code=code)
        assert response.status_code == 404, response.text
    prison = await share(world, service_message, body, code="MDI")
    assert prison.status_code == 403  # a prison holds no updates:write
    assert await received(world, PROBATION) == []


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"unknown": 1}, "/unknown"),
        ({"safeguarding": None}, "/safeguarding"),
        ({"engagement": [{"event": "exited", "date": "TODAY"}]}, "/engagement/0/exit_reason"),
        ({"engagement": [{"event": "attended", "date": "TOMORROW"}]}, "/engagement/0/date"),
        ({"engagement": [{"event": "attended", "date": "BEFORE"}]}, "/engagement/0/date"),
        ({"recall": {"date": "TODAY", "kind": "recalled"}}, "/recall"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    world, example, clock, change, pointer
):
    notice = await release(world, example, clock.today)
    days = {
        "TODAY": clock.today,
        "TOMORROW": clock.today + timedelta(days=1),
        "BEFORE": clock.today - timedelta(days=11),
    }

    def dated(value):
        if isinstance(value, dict):
            return {k: dated(v) for k, v in value.items()}
        if isinstance(value, list):
            return [dated(v) for v in value]
        return days[value].isoformat() if value in days else value

    body = {
        k: v for k, v in {**from_service(clock.today), **dated(change)}.items() if v is not None
    }
    await world.headers(SERVICE)  # its client and token first: they are not the update's
    before = await world.counts()
    response = await share(world, notice["sent"][SERVICE], body)
    assert response.status_code == 422, response.text
    assert pointer in [e["pointer"] for e in response.json()["errors"]]
    after = await world.counts()
    assert {t: n for t, n in after.items() if n != before[t]} == {}
