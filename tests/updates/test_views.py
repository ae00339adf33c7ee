"""Where care updates show, on both databases: an auditor finds them under the person; the
prison's views of its notice (its status, its disclosures) stay about the notice; the inbox
lists them as `care_update`, acknowledgeable `received` only."""

from __future__ import annotations

from tests.helpers.acknowledgements import acknowledge, dated, notice_status
from tests.helpers.updates import NOTE, PROBATION, SERVICE, from_service, received, release, shared


async def test_an_auditor_finds_the_update_under_the_person(world, example, clock):
    notice = await release(world, example, clock.today)
    answer = await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    response = await world.api.get(
        "/v1/audit/entries",
        params={"noms_number": "A1234BC", "action": "care_update.received"},
        headers=await world.headers("AUDIT"),
    )
    assert response.status_code == 200, response.text
    [entry] = response.json()["items"]
    assert entry["details"]["care_update_id"] == answer["id"]
    assert entry["details"]["sections"] == [
        "assessment",
        "clinical_note",
        "engagement",
        "safeguarding",
    ]
    assert NOTE not in str(entry)  # the sections by name only, never a value
    message_id = answer["recipients"][0]["message_id"]
    signed = await world.api.get(
        "/v1/audit/entries",
        params={"noms_number": "A1234BC", "action": "message.signed"},
        headers=await world.headers("AUDIT"),
    )
    assert message_id in [e["message_id"] for e in signed.json()["items"]]


async def test_the_prisons_views_stay_about_the_notice(world, example, clock):
    notice = await release(world, example, clock.today)
    await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    status = await notice_status(world, notice["id"])
    assert status[PROBATION]["message_id"] == notice["sent"][PROBATION]
    disclosures = await world.api.get(
        f"/v1/release-notices/{notice['id']}/disclosures", headers=await world.headers("MDI")
    )
    assert len(disclosures.json()["disclosures"]) == 2


async def test_a_care_update_is_acknowledged_received_only(world, example, clock):
    notice = await release(world, example, clock.today)
    await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    [item] = await received(world, PROBATION)
    ok = await acknowledge(world, item["id"], {"status": "received"})
    assert ok.status_code == 201, ok.text
    refused = await acknowledge(world, item["id"], dated("attended", clock.today))
    assert refused.status_code == 422
    # and the probation provider may share back about it: its own message about the release
    about = await shared(
        world, item["id"], {"accommodation": {"status": "temporary"}}, code=PROBATION
    )
    assert [r["organisation_code"] for r in about["recipients"]] == [SERVICE]
