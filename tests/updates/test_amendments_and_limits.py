"""Care updates across an amendment, the body limits and content type, and one Idempotency-Key
used by two organisations."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers.acknowledgements import released
from tests.helpers.notices import amend
from tests.helpers.updates import PROBATION, SERVICE, from_service, received, release, share, shared


async def test_an_amendment_that_changes_probation_routes_updates_to_the_new_one(
    world, example, clock
):
    notice = await release(world, example, clock.today)
    body = released(example, clock.today - timedelta(days=10))
    body["release_plan"]["probation_provider"] = "N99"
    changed = await amend(world, notice["id"], body)
    assert changed.status_code == 202, changed.text
    await received(world, "N99", "disclosure")  # numbered
    answer = await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    assert [r["organisation_code"] for r in answer["recipients"]] == ["N99"], answer
    assert await received(world, PROBATION) == []
    assert len(await received(world, "N99")) == 1
    old = await share(
        world, notice["sent"][PROBATION], {"accommodation": {"status": "unknown"}}, code=PROBATION
    )
    assert old.status_code == 409, old.text
    assert len(await received(world, SERVICE)) == 0


async def test_body_limits_and_content_type(world, example, clock):
    notice = await release(world, example, clock.today)
    headers = await world.headers(SERVICE)
    path = f"/v1/messages/{notice['sent'][SERVICE]}/updates"
    big = from_service(clock.today, clinical_note="x" * 300_000)
    response = await world.api.post(path, json=big, headers=headers)
    assert response.status_code == 413, response.text
    response = await world.api.post(
        path, content=b"engagement=1", headers={**headers, "content-type": "text/plain"}
    )
    assert response.status_code == 415, response.text
    long = from_service(clock.today, clinical_note="x" * 4001)
    response = await world.api.post(path, json=long, headers=headers)
    assert response.status_code == 422 and "/clinical_note" in response.text, response.text
    wrong = from_service(clock.today, engagement=[{"event": "attended", "date": 20261201}])
    response = await world.api.post(path, json=wrong, headers=headers)
    assert response.status_code == 422 and "/engagement/0/date" in response.text, response.text


async def test_the_same_key_by_another_organisation_is_its_own(world, example, clock):
    notice = await release(world, example, clock.today)
    key = {"idempotency-key": "shared-key"}
    first = await share(world, notice["sent"][SERVICE], from_service(clock.today), **key)
    assert first.status_code == 202
    other = await share(
        world,
        notice["sent"][PROBATION],
        {"accommodation": {"status": "temporary"}},
        code=PROBATION,
        **key,
    )
    assert other.status_code == 202 and "idempotent-replayed" not in other.headers
