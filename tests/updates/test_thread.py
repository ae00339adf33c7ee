"""What a care update does to the release's thread, on both databases: a withdrawal mid-flight
takes back the clinical detail not yet delivered; an `attended` event meets the engagement
deadline and counts once; probation's recall closes the release; Idempotency-Key replays."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.acknowledgements import acknowledge, dated
from tests.helpers.consents import consent, hexid, record, withdraw
from tests.helpers.messages import subscribe
from tests.helpers.notices import cancel
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


async def test_a_withdrawal_mid_flight_takes_back_the_clinical_detail(world, example, clock):
    notice = await release(world, example, clock.today)
    await subscribe(world, PROBATION, "http://127.0.0.1:9/hook")  # a delivery waits for it
    given = await record(world, consent(TREATMENT, "given"), code=SERVICE)
    answer = await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    first = answer["recipients"][0]["message_id"]

    response = await withdraw(world, given["id"], code=SERVICE)
    assert response.status_code == 200, response.text

    [(revoked_at, state)] = await world.sql(
        "SELECT m.revoked_at, d.state FROM message m JOIN delivery d ON d.message_id = m.id "
        "WHERE m.id = :id",
        id=hexid(first),  # PostgreSQL reads a uuid from its 32 hex digits too
    )
    assert revoked_at is not None and state == "revoked"
    items = {m["id"]: m for m in await received(world, PROBATION)}
    again = [m for m in items.values() if m.get("supersedes") == first]
    assert len(again) == 1, items
    _, claims = await verified(world.api, again[0]["jws"], PROBATION)
    assert "clinical_note" not in claims["disclosure"]
    assert withheld(claims)["/clinical_note"] == "consent_not_given"
    assert claims["update"]["id"] == answer["id"]
    assert claims["disclosure"]["safeguarding"]["children_contact"] == "yes"
    assert NOTE not in str(claims)


async def test_a_cancelled_release_stops_its_updates_not_yet_delivered(world, example, clock):
    notice = await release(world, example, clock.today)
    await subscribe(world, PROBATION, "http://127.0.0.1:9/hook")  # a delivery waits for it
    answer = await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    update = answer["recipients"][0]["message_id"]
    assert (await cancel(world, notice["id"], "release_cancelled")).status_code == 202
    [(revoked_at, state)] = await world.sql(
        "SELECT m.revoked_at, d.state FROM message m JOIN delivery d ON d.message_id = m.id "
        "WHERE m.id = :id",
        id=hexid(update),
    )
    assert revoked_at is not None and state == "revoked"
    response = await share(world, notice["sent"][SERVICE], from_service(clock.today))
    assert response.status_code == 409  # and the cancelled release takes no more


async def test_an_attended_event_meets_engagement_and_counts_once(world, example, clock):
    notice = await release(world, example, clock.today)
    service_message = notice["sent"][SERVICE]
    day = clock.today - timedelta(days=2)
    answered = await acknowledge(world, service_message, dated("attended", day), code=SERVICE)
    assert answered.status_code == 201, answered.text
    later = clock.today - timedelta(days=1)
    events = [
        {"event": "attended", "date": day.isoformat()},  # known already: not again
        {"event": "attended", "date": later.isoformat()},
    ]
    await shared(world, service_message, from_service(clock.today, engagement=events))
    rows = await world.sql(
        "SELECT status, appointment_date, care_update_id FROM acknowledgement ORDER BY recorded_at"
    )
    assert [(r[0], str(r[1]), r[2] is not None) for r in rows] == [
        ("attended", day.isoformat(), False),
        ("attended", later.isoformat(), True),
    ]
    [(days,)] = await world.sql("SELECT attended_days FROM engagement_outcome")
    assert sorted(days.split(",")) == [day.isoformat(), later.isoformat()]
    [(met,)] = await world.sql("SELECT met_at FROM deadline WHERE kind = 'engagement'")
    assert met is not None


async def test_probations_recall_closes_the_thread(world, example, clock):
    notice = await release(world, example, clock.today)
    recall = {"recall": {"date": clock.today.isoformat(), "kind": "recalled"}}
    answer = await shared(world, notice["sent"][PROBATION], recall, code=PROBATION)
    assert answer["closes_release"] == clock.today.isoformat()
    [item] = await received(world, SERVICE)
    _, claims = await verified(world.api, item["jws"], SERVICE)
    assert claims["disclosure"] == recall

    stopped = await world.sql("SELECT kind, stopped_reason FROM deadline ORDER BY kind")
    assert ("engagement", "recalled") in [tuple(r) for r in stopped]
    assert ("receipt", None) in [tuple(r) for r in stopped]  # receipts are still owed

    for code, body in (
        (SERVICE, from_service(clock.today)),
        (PROBATION, {"accommodation": {"status": "unknown"}}),
    ):
        response = await share(world, notice["sent"][code], body, code=code)
        assert response.status_code == 409, response.text
        assert "recalled" in response.json()["detail"]


async def test_a_repeated_idempotency_key_shares_nothing_more(world, example, clock):
    notice = await release(world, example, clock.today)
    body = from_service(clock.today)
    first = await share(world, notice["sent"][SERVICE], body, **{"idempotency-key": "k-1"})
    again = await share(world, notice["sent"][SERVICE], body, **{"idempotency-key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await received(world, PROBATION)) == 1
    other = await share(
        world, notice["sent"][SERVICE], {**body, "clinical_note": "x"}, **{"idempotency-key": "k-1"}
    )
    assert other.status_code == 409


async def test_a_service_whose_disclosure_was_withdrawn_cannot_share(world, example, clock):
    notice = await release(world, example, clock.today)
    refused = consent("substance_misuse_service", "refused")
    await record(world, refused, code=SERVICE)
    response = await share(world, notice["sent"][SERVICE], from_service(clock.today))
    assert response.status_code == 409, response.text
    assert await received(world, PROBATION) == []
