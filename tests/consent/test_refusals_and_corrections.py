"""What a withdrawal, a refusal or a correction takes back, and who may see consents, on both
databases.

What a recipient may still read once a consent is withdrawn (inbox-only, a second subscription); who
may see or change a person's consents at all; what a notice entered in error, an amendment and a
refusal recorded later take with them; and that a correction made before the worker runs leaves the
exchange with nothing at all. Races of the same on PostgreSQL are in
tests/consent/test_withdrawal_races.py. Helpers are in tests/helpers/consents.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from app.access import organisations as admin
from tests.helpers.consents import (
    CLINICAL,
    NOMS,
    OTHER,
    SMS,
    as_json,
    carried,
    change,
    consent,
    hexid,
    history,
    introduce,
    log,
    people,
    post,
    recipients,
    record,
    rfc3339,
    states,
    withdrawn,
)
from tests.helpers.messages import inbox, subscribe, verified
from tests.helpers.problems import assert_problem
from tests.helpers.receiver import running_receiver
from tests.helpers.worker import work

UNKNOWN_TO_YOU = "No notice about this person concerns you."


def kinds(answer: dict[str, Any], kind: str) -> dict[str, str]:
    """Per recipient, the message of this kind that an answer names."""
    return {
        r["organisation_code"]: r["message_id"] for r in answer["recipients"] if r["kind"] == kind
    }


async def message(world, code: str, message_id: str) -> dict[str, Any]:
    response = await world.api.get(f"/v1/messages/{message_id}", headers=await world.headers(code))
    assert response.status_code == 200, response.text
    return response.json()


# --- what a recipient may still read after a withdrawal (review r1, A and H) ---------------------


async def test_an_inbox_only_recipient_can_no_longer_read_what_relied_on_a_withdrawn_consent(
    world, api, example
):
    sent = recipients(await post(world, example))  # SMS-LEEDS has no subscription: inbox only
    answer = await withdrawn(world, (await carried(world, SMS))["id"])

    [told] = answer["notified"]
    assert (answer["revoked"], answer["redisclosed"]) == ([], [])
    original, item = await inbox(world, "SMS-LEEDS")
    # It may have been read already, so it is not revoked; but it is served no more.
    assert (original["id"], original["jws"], original["revoked_at"]) == (
        sent["SMS-LEEDS"],
        None,
        None,
    )
    assert await message(world, "SMS-LEEDS", original["id"]) == original
    assert (item["id"], item["kind"], item["supersedes"]) == (
        told,
        "consent_withdrawn",
        original["id"],
    )
    _, claims = await verified(api, item["jws"], "SMS-LEEDS")
    assert (claims["scope"], claims["supersedes"]) == (SMS, sent["SMS-LEEDS"])
    rows = await world.sql("SELECT id, withdrawn_at, revoked_at FROM message")
    marks = {hexid(m): (w is not None, r is not None) for m, w, r in rows}
    assert marks[hexid(sent["SMS-LEEDS"])] == (True, False)  # withdrawn, not revoked
    assert marks[hexid(sent["N07"])] == marks[hexid(told)] == (False, False)
    # Probation's disclosure never relied on the consent: still served.
    [n07] = await inbox(world, "N07")
    assert n07["id"] == sent["N07"] and n07["jws"] and n07["revoked_at"] is None
    assert await log(world, "message.revoked") == []


async def test_a_second_subscription_is_not_sent_a_message_whose_consent_was_withdrawn(
    world, example, settings
):
    with running_receiver() as up, running_receiver(then=500) as down:
        secrets = {
            "a": await subscribe(world, "SMS-LEEDS", f"{up.url}/a"),
            "b": await subscribe(world, "SMS-LEEDS", f"{down.url}/b"),
        }
        sent = recipients(await post(world, example))["SMS-LEEDS"]
        assert await work(world, settings) == 2  # a delivered; b failed, to be retried
        up.wait_for(1)
        down.wait_for(1)
        assert await states(world) == {("SMS-LEEDS", hexid(sent)): ["delivered", "pending"]}

        answer = await withdrawn(world, (await carried(world, SMS))["id"])
        [told] = answer["notified"]
        assert answer["revoked"] == []
        assert (await states(world))[("SMS-LEEDS", hexid(sent))] == ["delivered", "revoked"]

        down.then = 204  # b answers again; every retry there is due an hour on
        assert await work(world, settings, datetime.now(UTC) + timedelta(hours=1)) == 2
        for receiver, path in ((up, "a"), (down, "b")):
            first, second = receiver.wait_for(2)
            Webhook(secrets[path]).verify(second.body, second.headers)
            events = [json.loads(r.body) for r in (first, second)]
            assert [(e["type"], e["data"]["message_id"]) for e in events] == [
                ("disclosure.created", sent),
                ("consent.withdrawn", told),
            ], path
        assert await work(world, settings, datetime.now(UTC) + timedelta(days=3)) == 0
    assert len(down.requests) == 2  # the disclosure was never sent to b again


# --- who may see or change a person's consents (review r1, F) -------------------------------------


async def test_who_has_no_part_in_the_persons_notices_gets_404_on_every_consent_endpoint(
    world, example
):
    async with world.sessions() as session, session.begin():
        await admin.add_organisation(
            session,
            kind="substance_misuse_service",
            code="SMS-YORK",
            name="York",
            now=datetime.now(UTC),
        )
    await post(world, example)  # MDI's notice, decided for N07 and SMS-LEEDS
    given = await carried(world, SMS)

    async def every_endpoint(code: str, noms: str = NOMS) -> list:
        headers = await world.headers(code)
        return [
            await world.api.post(people(noms), json=consent(SMS, "refused"), headers=headers),
            await world.api.get(people(noms), headers=headers),
            await world.api.get(f"{people(noms)}/{given['id']}", headers=headers),
            await world.api.post(f"{people(noms)}/{given['id']}/withdrawal", headers=headers),
        ]

    for code in ("LPI", "SMS-YORK", "MDI", "SMS-LEEDS"):
        await world.headers(code)  # their clients and tokens, made before the counting
    counts, rows = await world.counts(), await world.sql("SELECT * FROM consent ORDER BY id")
    cases = {
        "another prison": ("LPI", NOMS),
        "an unrelated treatment service": ("SMS-YORK", NOMS),
        "the prison, about someone it never posted": ("MDI", OTHER),
        "the treatment service, about someone never decided for it": ("SMS-LEEDS", OTHER),
    }
    bodies = set()
    for case, (code, noms) in cases.items():
        for response in await every_endpoint(code, noms):
            problem = assert_problem(response, 404, f"{case} {response.request.url.path}")
            bodies.add(json.dumps(problem, sort_keys=True))
    # One answer for all: it tells no one whether the person is known to the exchange.
    assert [json.loads(b)["detail"] for b in bodies] == [UNKNOWN_TO_YOU]
    assert await world.counts() == counts
    assert await world.sql("SELECT * FROM consent ORDER BY id") == rows

    # A prison that posts a notice about the person has a part in them from then on.
    await introduce(world, code="LPI")
    assert (await history(world, code="LPI"))["items"] == (await history(world))["items"]


async def test_a_service_has_a_part_only_once_a_notice_about_the_person_is_decided_for_it(
    world, example
):
    elsewhere = copy.deepcopy(example)
    del elsewhere["release_plan"]["substance_misuse_service"]
    del elsewhere["release_plan"]["treatment_appointment"]
    await post(world, elsewhere)  # the person is known, but not to SMS-LEEDS
    response = await world.api.get(people(), headers=await world.headers("SMS-LEEDS"))
    assert assert_problem(response, 404)["detail"] == UNKNOWN_TO_YOU

    refused = copy.deepcopy(example)
    refused["consent"][0]["decision"] = "refused"
    assert recipients(await post(world, refused))["SMS-LEEDS"] is None  # decided, nothing sent
    assert len((await history(world, code="SMS-LEEDS"))["items"]) == 3
    made = await record(world, consent(SMS, "given"), code="SMS-LEEDS")
    assert made["scope"] == SMS


# --- what a notice entered in error, or amended, takes with it (review r5) -----------------------


async def test_a_notice_for_the_wrong_person_cancelled_in_error_leaves_them_no_consent(
    world, example
):
    wrong = copy.deepcopy(example)
    wrong["person"]["noms_number"] = OTHER  # a typo: someone else
    first = await post(world, wrong)
    assert recipients(first)["SMS-LEEDS"]  # sent on the strength of the carried consent
    cancelled = await change(world, first["id"], "cancellation", {"reason": "entered_in_error"})
    assert set(kinds(cancelled, "cancellation")) == {"N07", "SMS-LEEDS"}  # both may hold it

    listed = await history(world, OTHER)
    assert listed["standing"] == {}  # as if never recorded: neither given nor refused
    assert all(c["voided_at"] and c["withdrawn_at"] is None for c in listed["items"])
    assert len(listed["items"]) == 2
    voided = await world.sql(
        "SELECT notice_id, details FROM audit_entry WHERE action = 'consent.voided' ORDER BY id"
    )
    ref = world.data_keys.person_ref(OTHER)
    assert sorted((hexid(n), as_json(d)["scope"]) for n, d in voided) == [
        (hexid(first["id"]), CLINICAL),
        (hexid(first["id"]), SMS),
    ]
    assert {as_json(d)["person_ref"] for _, d in voided} == {ref}
    # A voided record cannot be withdrawn either.
    given = next(c for c in listed["items"] if c["scope"] == SMS)
    path = f"{people(OTHER)}/{given['id']}/withdrawal"
    assert_problem(await world.api.post(path, headers=await world.headers("MDI")), 409)

    genuine = copy.deepcopy(wrong)
    genuine["consent"] = []  # the person never gave it
    assert recipients(await post(world, genuine))["SMS-LEEDS"] is None


async def test_a_voided_refusal_is_no_refusal(world, example):
    await introduce(world)
    now = datetime.now(UTC)
    await record(world, consent(SMS, "given", recorded_at=rfc3339(now - timedelta(hours=2))))
    later = copy.deepcopy(example)
    later["consent"] = [
        {**consent(SMS, "refused"), "recorded_at": rfc3339(now - timedelta(hours=1))}
    ]
    mistaken = await post(world, later)
    assert recipients(mistaken)["SMS-LEEDS"] is None
    assert (await history(world))["standing"] == {SMS: False}

    await change(world, mistaken["id"], "cancellation", {"reason": "entered_in_error"})
    assert (await history(world))["standing"] == {SMS: True}  # the earlier consent stands again
    assert recipients(await post(world, later | {"consent": []}))["SMS-LEEDS"]


async def test_an_amendment_that_no_longer_carries_a_consent_voids_it(world, example, settings):
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/hooks")  # queued, never delivered
    first = await post(world, example)
    given, refused = await carried(world, SMS), await carried(world, CLINICAL)
    corrected = copy.deepcopy(example)
    corrected["consent"] = [c for c in example["consent"] if c["scope"] != SMS]
    second = await change(world, first["id"], "amendments", corrected)

    assert recipients(second)["SMS-LEEDS"] is None and kinds(second, "cancellation") == {}
    listed = {c["id"]: c for c in (await history(world))["items"]}
    assert listed[given["id"]]["voided_at"] and listed[refused["id"]]["voided_at"] is None
    assert (await history(world))["standing"] == {CLINICAL: False}
    # Never delivered, the first version's disclosure is revoked: never sent, nothing to cancel.
    old = recipients(first)["SMS-LEEDS"]
    [item] = await inbox(world, "SMS-LEEDS")
    assert (item["id"], item["jws"]) == (old, None) and item["revoked_at"]
    assert (await states(world))[("SMS-LEEDS", hexid(old))] == ["revoked"]
    assert {m for m, _ in await log(world, "message.revoked")} == {hexid(old)}
    assert await work(world, settings) == 0


# --- a refusal recorded later takes effect at once (review r6) -----------------------------------


@pytest.mark.parametrize("held", [False, True])
async def test_a_refusal_recorded_through_the_api_stops_what_relied_on_the_consent(
    world, example, settings, held
):
    with running_receiver() as receiver:
        await subscribe(world, "SMS-LEEDS", f"{receiver.url}/sms")
        sent = recipients(await post(world, example))["SMS-LEEDS"]
        if held:
            assert await work(world, settings) == 1
        await record(world, consent(SMS, "refused"), code="SMS-LEEDS")  # the person says no
        assert (await history(world))["standing"] == {SMS: False, CLINICAL: False}
        assert await work(world, settings) == (1 if held else 0)
        events = [json.loads(r.body)["type"] for r in receiver.requests]
    first, *rest = await inbox(world, "SMS-LEEDS")
    assert (first["id"], first["jws"]) == (sent, None)
    if held:  # it was delivered: told, not revoked
        assert events == ["disclosure.created", "consent.withdrawn"]
        assert first["revoked_at"] is None
        assert [(m["kind"], m["supersedes"]) for m in rest] == [("consent_withdrawn", sent)]
    else:  # never sent
        assert events == [] and rest == [] and first["revoked_at"]
        assert await log(world, "message.revoked") == [
            (hexid(sent), {"reason": "consent_withdrawn"})
        ]


async def test_a_refusal_older_than_the_consent_changes_nothing(world, example):
    sent = recipients(await post(world, example))["SMS-LEEDS"]
    given = instant_of(await carried(world, SMS))
    await record(world, consent(SMS, "refused", recorded_at=rfc3339(given - timedelta(days=1))))
    assert (await history(world))["standing"][SMS] is True
    [item] = await inbox(world, "SMS-LEEDS")
    assert (item["id"], item["revoked_at"]) == (sent, None) and item["jws"]


async def test_a_refusal_dated_a_little_ahead_still_stops_what_relied_on_the_consent(
    world, example, settings
):
    """A refusal stamped by a clock that runs a little fast is accepted (up to five minutes
    ahead); what relied on the consent must not be sent once it stands, whenever that is."""
    with running_receiver() as receiver:
        await subscribe(world, "SMS-LEEDS", f"{receiver.url}/sms")
        sent = recipients(await post(world, example))["SMS-LEEDS"]
        ahead = rfc3339(datetime.now(UTC) + timedelta(minutes=4))
        await record(world, consent(SMS, "refused", recorded_at=ahead), code="SMS-LEEDS")
        await work(world, settings, datetime.now(UTC) + timedelta(minutes=5))
        assert receiver.requests == []
    [item] = await inbox(world, "SMS-LEEDS")
    assert (item["id"], item["jws"]) == (sent, None)


def instant_of(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["recorded_at"])


# --- a correction before the worker runs (review r7) ---------------------------------------------


async def test_a_notice_cancelled_in_error_before_the_worker_runs_sends_nothing(
    world, example, settings
):
    with running_receiver() as receiver:
        for code in ("N07", "SMS-LEEDS"):
            await subscribe(world, code, f"{receiver.url}/{code}")
        first = await post(world, example)
        cancelled = await change(world, first["id"], "cancellation", {"reason": "entered_in_error"})
        assert kinds(cancelled, "cancellation") == {}  # nobody got it: nobody to tell
        assert await work(world, settings) == 0
        assert receiver.requests == []
    for code, message_id in recipients(first).items():
        [item] = await inbox(world, code)
        assert (item["id"], item["jws"]) == (message_id, None) and item["revoked_at"]
        assert (await states(world))[(code, hexid(message_id))] == ["revoked"]
    revoked = await log(world, "message.revoked")
    assert sorted(revoked) == sorted(
        (hexid(m), {"reason": "cancelled"}) for m in recipients(first).values()
    )
    assert (await history(world))["standing"] == {}


async def test_an_amendment_before_the_worker_runs_sends_only_the_new_version(
    world, example, settings
):
    with running_receiver() as receiver:
        for code in ("N07", "SMS-LEEDS"):
            await subscribe(world, code, f"{receiver.url}/{code}")
        accepted = await post(world, example)
        first = recipients(accepted)
        second = await change(world, accepted["id"], "amendments", example)
        assert kinds(second, "cancellation") == {}
        assert await work(world, settings) == 2
        events = sorted(
            (r.path.rsplit("/", 1)[-1], json.loads(r.body)["data"]) for r in receiver.wait_for(2)
        )
    assert [(code, d["message_id"], d["supersedes"]) for code, d in events] == [
        (code, recipients(second)[code], first[code]) for code in ("N07", "SMS-LEEDS")
    ]
    assert sorted(await log(world, "message.revoked")) == sorted(
        (hexid(m), {"reason": "superseded"}) for m in first.values()
    )


# --- idempotency keys are keyed hashes (review r4) -----------------------------------------------


async def test_an_idempotency_key_is_stored_as_a_keyed_hash(world, example):
    key = f"{NOMS}-Hughes-{'x' * 200}"  # built from personal data, and long
    headers = {**await world.headers("MDI"), "idempotency-key": key}
    response = await world.api.post("/v1/release-notices", json=example, headers=headers)
    assert response.status_code == 202, response.text
    [(stored,)] = await world.sql("SELECT key_sha256 FROM idempotency_key")
    assert stored == world.data_keys.idempotency_ref(key)
    assert stored not in (key, hashlib.sha256(key.encode()).hexdigest())
    again = await world.api.post("/v1/release-notices", json=example, headers=headers)
    assert (again.status_code, again.json()) == (202, response.json())
