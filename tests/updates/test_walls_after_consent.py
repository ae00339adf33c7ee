"""Who stays on a release for care updates when the person's consent changes: a recipient
leaves only when it loses the consent that routes it to the release (or is cancelled or
replaced), and a withdrawal deciding an update again keeps the same walls."""

from __future__ import annotations

import copy
from datetime import timedelta

from tests.helpers.acknowledgements import released
from tests.helpers.consents import consent, hexid, record, withdraw
from tests.helpers.messages import subscribe
from tests.helpers.notices import amend
from tests.helpers.policies import POLICY
from tests.helpers.updates import (
    PROBATION,
    SERVICE,
    from_service,
    received,
    release,
    share,
    shared,
    verified,
)

CLINICAL = "probation_clinical_details"


async def test_safeguarding_still_reaches_probation_after_clinical_details_are_refused(
    world, example, clock
):
    """The person refuses `probation_clinical_details` after the notice: probation's disclosure
    is marked withdrawn (it was told), yet probation remains the release's probation provider on
    its statutory basis. The SMS's update (safeguarding, always to probation) is answered 202
    with no message for probation: it is silently dropped."""
    given = copy.deepcopy(example)
    for item in given["consent"]:
        if item["scope"] == CLINICAL:
            item["decision"] = "given"
    notice = await release(world, given, clock.today)
    await record(world, consent(CLINICAL, "refused"))  # by the prison

    answer = await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    [to_probation] = answer["recipients"]
    assert to_probation["message_id"] is not None, answer
    [item] = await received(world, PROBATION)
    _, claims = await verified(world.api, item["jws"], PROBATION)
    assert claims["disclosure"]["safeguarding"]["children_contact"] == "yes"


async def test_probation_can_still_recall_after_clinical_details_are_refused(world, example, clock):
    """Same refusal: probation can no longer post a recall (409, "withdrawn with its consent"),
    so the release's thread and its engagement deadlines cannot be closed."""
    given = copy.deepcopy(example)
    for item in given["consent"]:
        if item["scope"] == CLINICAL:
            item["decision"] = "given"
    notice = await release(world, given, clock.today)
    await record(world, consent(CLINICAL, "refused"))

    recall = {"recall": {"date": clock.today.isoformat(), "kind": "recalled"}}
    response = await share(world, notice["sent"][PROBATION], recall, code=PROBATION)
    assert response.status_code == 202, response.text


async def test_a_service_whose_consent_is_refused_is_sent_no_update_again(world, example, clock):
    """Probation's update (accommodation, risk to staff) waits for delivery to the service; the
    person refuses `substance_misuse_service`, so the service's disclosure of the release is
    withdrawn and posting an update now would send it nothing. The withdrawal decides the
    waiting update again and, risk to staff being statutory, signs the service a new care
    update: the service keeps receiving about a person whose sharing with it was refused."""

    notice = await release(world, example, clock.today)
    await subscribe(world, SERVICE, "http://127.0.0.1:9/hook")  # its deliveries wait
    body = {
        "accommodation": {"status": "rough_sleeping"},
        "risk_to_staff": {"level": "high", "details": "Meet in pairs."},
    }
    answer = await shared(world, notice["sent"][PROBATION], body, code=PROBATION)
    first = answer["recipients"][0]["message_id"]
    await record(world, consent("substance_misuse_service", "refused"))  # by the prison

    rows = await world.sql(
        "SELECT id, supersedes_id, revoked_at FROM message WHERE kind = 'care_update'"
    )

    again = [r for r in rows if r[1] is not None and hexid(r[1]) == hexid(first)]
    assert again == [], rows


async def test_a_withdrawal_after_an_amendment_still_sends_probation_the_safeguarding(
    world, example, clock
):
    """An update waits for delivery to probation; the prison amends the notice (the update's
    notice version is no longer the one in force); the person withdraws
    `treatment_to_probation`. The update's message is revoked but, its notice version not being
    `accepted`, never decided again: probation loses the update's safeguarding and engagement,
    which reach it whatever the consent."""

    notice = await release(world, example, clock.today)
    await subscribe(world, PROBATION, "http://127.0.0.1:9/hook")  # its deliveries wait
    given = await record(world, consent("treatment_to_probation", "given"), code=SERVICE)
    answer = await shared(world, notice["sent"][SERVICE], from_service(clock.today))
    first = answer["recipients"][0]["message_id"]

    body = released(example, clock.today - timedelta(days=10))
    body["safeguarding"]["concerns"] = "Plans to visit his children on the day after release."
    changed = await amend(world, notice["id"], body)
    assert changed.status_code == 202, changed.text

    response = await withdraw(world, given["id"], code=SERVICE)
    assert response.status_code == 200, response.text

    rows = await world.sql(
        "SELECT m.id, m.revoked_at, d.state FROM message m JOIN delivery d ON d.message_id = m.id"
        " WHERE m.kind = 'care_update'"
    )
    [(_, revoked_at, state)] = [r for r in rows if hexid(r[0]) == hexid(first)]
    assert revoked_at is not None and state == "revoked"  # the clinical note is stopped
    items = await received(world, PROBATION)
    again = [m for m in items if m.get("supersedes") == first]
    assert len(again) == 1, items
    _, claims = await verified(world.api, again[0]["jws"], PROBATION)
    assert claims["disclosure"]["safeguarding"]["children_contact"] == "yes"
    assert "clinical_note" not in claims["disclosure"]


def test_only_the_consent_that_routes_a_recipient_takes_it_off_the_release():
    none: dict[str, bool] = {}
    assert POLICY.routes("probation_provider", none)  # statutory: no consent removes it
    assert POLICY.routes("probation_provider", {CLINICAL: False})
    assert not POLICY.routes("substance_misuse_service", none)
    assert not POLICY.routes("substance_misuse_service", {"substance_misuse_service": False})
    assert POLICY.routes("substance_misuse_service", {"substance_misuse_service": True})
