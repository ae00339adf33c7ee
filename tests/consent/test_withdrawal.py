"""Withdrawing a consent: what relied on it is revoked and decided again, or its holder is told.

On both databases, with real deliveries to a loopback receiver and signed messages checked with
PyJWT against the JWKS. Helpers are in tests/helpers/consents.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from app.messages import leases
from app.notices import retention
from tests.helpers.consents import (
    CLINICAL,
    CLINICAL_NOTES,
    NOMS,
    OTHER,
    SMS,
    as_json,
    carried,
    change,
    consent,
    hexid,
    history,
    instant,
    introduce,
    log,
    post,
    recipients,
    record,
    states,
    withdraw,
    withdrawn,
)
from tests.helpers.messages import inbox, subscribe, verified
from tests.helpers.problems import assert_problem
from tests.helpers.receiver import running_receiver
from tests.helpers.worker import work

WITHDRAWN_CLAIMS = {"iss", "aud", "iat", "jti", "notice_id", "supersedes", "scope", "withdrawn_at"}


# --- not yet delivered: revoked, and decided again -------------------------------------------


async def test_an_undelivered_treatment_message_is_revoked_and_never_sent(world, example, settings):
    with running_receiver() as receiver:
        for code in ("N07", "SMS-LEEDS"):
            await subscribe(world, code, f"{receiver.url}/{code}")
        sent = recipients(await post(world, example))
        given = await carried(world, SMS)
        answer = await withdrawn(world, given["id"])

        assert (answer["revoked"], answer["redisclosed"]) == ([sent["SMS-LEEDS"]], [])
        assert answer["notified"] == []
        assert await states(world) == {
            ("N07", hexid(sent["N07"])): ["pending"],
            ("SMS-LEEDS", hexid(sent["SMS-LEEDS"])): ["revoked"],
        }
        assert await work(world, settings) == 1  # probation's only
        assert [r.path for r in receiver.wait_for(1)] == ["/hooks/N07"]
        assert await work(world, settings) == 0

    at = answer["consent"]["withdrawn_at"]
    [item] = await inbox(world, "SMS-LEEDS")
    assert (item["id"], item["jws"], item["revoked_at"]) == (sent["SMS-LEEDS"], None, at)
    one = await world.api.get(
        f"/v1/messages/{item['id']}", headers=await world.headers("SMS-LEEDS")
    )
    assert one.json() == item
    [n07] = await inbox(world, "N07")
    assert n07["jws"] is not None and n07["revoked_at"] is None
    ref = world.data_keys.person_ref(NOMS)
    assert await log(world, "consent.withdrawn") == [
        (None, {"consent_id": given["id"], "person_ref": ref, "scope": SMS})
    ]
    assert await log(world, "message.revoked") == [
        (hexid(sent["SMS-LEEDS"]), {"reason": "consent_withdrawn"})
    ]
    listed = await history(world)
    assert listed["standing"] == {SMS: False, CLINICAL: False}
    assert [c["withdrawn_at"] for c in listed["items"]] == [at, None]


async def test_probation_is_sent_the_notice_again_without_the_clinical_notes(
    world, api, example, settings
):
    example["consent"][1]["decision"] = "given"
    with running_receiver() as receiver:
        secret = await subscribe(world, "N07", f"{receiver.url}/N07")
        sent = recipients(await post(world, example))
        answer = await withdrawn(world, (await carried(world, CLINICAL))["id"])

        [again] = answer["redisclosed"]
        assert (answer["revoked"], answer["notified"]) == ([sent["N07"]], [])
        assert await work(world, settings) == 1
        [request] = receiver.wait_for(1)
    Webhook(secret).verify(request.body, request.headers)
    event = json.loads(request.body)
    assert event["type"] == "disclosure.created"
    assert (event["data"]["message_id"], event["data"]["supersedes"]) == (again, sent["N07"])

    old, new = await inbox(world, "N07")
    at = answer["consent"]["withdrawn_at"]
    assert (old["id"], old["jws"], old["revoked_at"]) == (sent["N07"], None, at)
    assert (new["id"], new["supersedes"], new["revoked_at"]) == (again, sent["N07"], None)
    assert (old["superseded_by"], new["superseded_by"]) == (again, None)  # revoked and replaced
    assert new["jws"] == event["data"]["jws"]
    header, claims = await verified(api, new["jws"], "N07")
    assert header["typ"] == "disclosure+jwt"
    assert (claims["jti"], claims["supersedes"], claims["sub"]) == (again, sent["N07"], NOMS)
    treatment = dict(example["nps_use"]["treatment_in_custody"])
    del treatment["clinical_notes"]
    assert claims["disclosure"]["nps_use"]["treatment_in_custody"] == treatment
    assert claims["disclosure"]["safeguarding"] == example["safeguarding"]
    withheld = {"path": CLINICAL_NOTES, "rule": "probation.clinical-notes"}
    assert {**withheld, "reason": "consent_not_given"} in claims["manifest"]
    # The treatment service's disclosure never relied on clinical consent: untouched.
    [sms] = await inbox(world, "SMS-LEEDS")
    assert (sms["id"], sms["revoked_at"]) == (sent["SMS-LEEDS"], None) and sms["jws"]
    relied = await world.sql(
        "SELECT m.id, d.consents_relied FROM message m JOIN disclosure d ON d.id = m.disclosure_id"
    )
    assert {hexid(m): as_json(r) for m, r in relied} == {
        hexid(sent["N07"]): [CLINICAL],
        hexid(sent["SMS-LEEDS"]): [SMS],
        hexid(again): [],
    }


# --- possibly held already: the recipient is told --------------------------------------------


HOLDS = ["delivered", "delivered to one subscription of two", "in flight", "in its inbox only"]
# The states of the original message's deliveries after the withdrawal, by what it holds.
STOPPED = {
    "delivered": ["delivered"],
    "delivered to one subscription of two": ["delivered", "revoked"],
    "in flight": ["pending"],
    "in its inbox only": None,
}


@pytest.mark.parametrize("holds", HOLDS)
async def test_a_recipient_that_may_hold_the_message_is_sent_consent_withdrawn(
    world, api, example, settings, holds
):
    paths = {"in its inbox only": [], "delivered to one subscription of two": ["a", "b"]}
    split = holds == "delivered to one subscription of two"
    with running_receiver(script=[500] if split else []) as receiver:  # one of two fails
        secrets = {
            path: await subscribe(world, "SMS-LEEDS", f"{receiver.url}/{path}")
            for path in paths.get(holds, ["a"])
        }
        sent = recipients(await post(world, example))["SMS-LEEDS"]
        if holds.startswith("delivered"):  # a little ahead, so no retry is due before the end
            at = datetime.now(UTC) + timedelta(minutes=10)
            assert await work(world, settings, at) == len(secrets)
        if holds == "in flight":  # a worker has it leased and may be sending it now
            async with world.sessions() as session, session.begin():
                now, lease = datetime.now(UTC), timedelta(minutes=5)
                claimed = await leases.claim_due(
                    session, world.data_keys, now=now, limit=10, lease=lease
                )
            assert len(claimed) == 1
        seen = len(receiver.requests)
        answer = await withdrawn(world, (await carried(world, SMS))["id"])

        [told] = answer["notified"]
        assert (answer["revoked"], answer["redisclosed"]) == ([], [])
        assert await work(world, settings) == len(secrets)
        events = receiver.wait_for(seen + len(secrets))[seen:]

    original, item = await inbox(world, "SMS-LEEDS")
    # Not revoked (it may have been seen), but withheld from the inbox from now on, and its
    # deliveries not yet attempted are stopped; one in flight is left to its worker.
    assert (original["id"], original["jws"], original["revoked_at"]) == (sent, None, None)
    assert original["superseded_by"] is None  # a consent withdrawal names it, replacing nothing
    assert (await states(world)).get(("SMS-LEEDS", hexid(sent))) == STOPPED[holds]
    assert (item["id"], item["kind"], item["supersedes"]) == (told, "consent_withdrawn", sent)
    header, claims = await verified(api, item["jws"], "SMS-LEEDS")
    assert header["typ"] == "consent-withdrawn+jwt" and set(claims) == WITHDRAWN_CLAIMS
    assert (claims["jti"], claims["supersedes"], claims["scope"]) == (told, sent, SMS)
    assert claims["notice_id"] == item["notice_id"] == original["notice_id"]
    at = instant(answer["consent"]["withdrawn_at"])
    assert claims["withdrawn_at"] == int(at.timestamp())
    for request in events:
        Webhook(secrets[request.path.rsplit("/", 1)[-1]]).verify(request.body, request.headers)
        event = json.loads(request.body)
        assert event["type"] == "consent.withdrawn"
        assert (event["data"]["message_id"], event["data"]["supersedes"]) == (told, sent)
        assert event["data"]["jws"] == item["jws"]
    assert sorted(r.path for r in events) == sorted(f"/hooks/{p}" for p in secrets)
    assert await log(world, "message.revoked") == []
    # The prison sees the withdrawal message among the notice's recipients.
    status = await api.get(
        f"/v1/release-notices/{original['notice_id']}", headers=await world.headers("MDI")
    )
    rows = [(r["organisation_code"], r["kind"]) for r in status.json()["recipients"]]
    assert ("SMS-LEEDS", "consent_withdrawn") in rows
    [row] = [r for r in status.json()["recipients"] if r["kind"] == "consent_withdrawn"]
    assert (row["message_id"], row["supersedes"]) == (told, sent)


# --- what is left alone ----------------------------------------------------------------------


async def test_only_messages_that_relied_on_the_scope_are_dealt_with(world, example):
    """Undelivered ones replaced by a cancellation or an amendment were revoked then (never
    sent), so only the latest is left to revoke; purged ones are gone."""
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/hooks")  # queued, never delivered
    purged = recipients(await post(world, example))
    async with world.sessions() as session, session.begin():
        await retention.purge(session, older_than=timedelta(0), now=datetime.now(UTC), limit=1)
    cancelled = await post(world, example)
    await change(world, cancelled["id"], "cancellation", {"reason": "other"})
    first = await post(world, example)
    latest = recipients(await change(world, first["id"], "amendments", example))
    replaced = [recipients(n)["SMS-LEEDS"] for n in (cancelled, first)]
    assert [(m, d["reason"]) for m, d in await log(world, "message.revoked")] == [
        (hexid(replaced[0]), "cancelled"),
        (hexid(replaced[1]), "superseded"),
    ]

    # Clinical consent given after every notice was decided: nothing relied on it.
    clinical = await record(world, consent(CLINICAL, "given"))
    nothing = await withdrawn(world, clinical["id"])
    assert (nothing["revoked"], nothing["redisclosed"], nothing["notified"]) == ([], [], [])

    answer = await withdrawn(world, (await carried(world, SMS))["id"])
    assert (answer["revoked"], answer["redisclosed"]) == ([latest["SMS-LEEDS"]], [])
    assert answer["notified"] == []
    revoked = [m["id"] for m in await inbox(world, "SMS-LEEDS") if m["revoked_at"]]
    assert revoked == [*replaced, latest["SMS-LEEDS"]]
    assert [m["kind"] for m in await inbox(world, "SMS-LEEDS")] == ["disclosure"] * 4
    assert all(m["revoked_at"] is None for m in await inbox(world, "N07"))
    assert purged["SMS-LEEDS"] not in revoked


# --- refused, changing nothing ---------------------------------------------------------------


async def test_a_withdrawal_that_cannot_be_made_is_refused_and_changes_nothing(world, example):
    await post(world, example)
    await introduce(world, OTHER)
    given, refused = await carried(world, SMS), await carried(world, CLINICAL)
    theirs = await record(world, consent(SMS, "given"), noms=OTHER)
    gone = await record(world, consent(CLINICAL, "given"))
    await withdrawn(world, gone["id"])
    cases = {
        "a second withdrawal": (gone["id"], NOMS, 409, "Already withdrawn"),
        "a refusal": (refused["id"], NOMS, 409, "Not a consent"),
        "another person's record": (theirs["id"], NOMS, 404, "Not found"),
        "a record under another person's number": (given["id"], OTHER, 404, "Not found"),
        "an unknown record": (str(uuid.uuid4()), NOMS, 404, "Not found"),
        "not a record id": ("not-a-uuid", NOMS, 422, "Validation failed"),
    }
    before, records = await world.counts(), await world.sql("SELECT * FROM consent ORDER BY id")
    for case, (consent_id, noms, status, title) in cases.items():
        problem = assert_problem(await withdraw(world, consent_id, noms=noms), status, case)
        assert problem["title"] == title, case
    assert await world.counts() == before
    assert await world.sql("SELECT * FROM consent ORDER BY id") == records
    assert (await history(world, OTHER))["standing"] == {SMS: True}


async def test_of_concurrent_withdrawals_of_one_record_exactly_one_succeeds(world, example):
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/hooks")
    sent = recipients(await post(world, example))
    given = await carried(world, SMS)
    await world.headers("MDI")  # one client and token, made before the rush
    responses = await asyncio.gather(*(withdraw(world, given["id"]) for _ in range(4)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409], [r.text for r in responses]
    [winner] = [r.json() for r in responses if r.status_code == 200]
    assert winner["revoked"] == [sent["SMS-LEEDS"]]
    assert {r.json()["title"] for r in responses if r.status_code == 409} == {"Already withdrawn"}
    assert len(await log(world, "consent.withdrawn")) == 1
    assert len(await log(world, "message.revoked")) == 1
    assert (await world.counts())["message"] == 2  # no second decision, nothing sent again
    at = winner["consent"]["withdrawn_at"]
    assert [c["withdrawn_at"] for c in (await history(world))["items"]] == [at, None]


# --- later notices ---------------------------------------------------------------------------


async def test_later_notices_respect_a_withdrawal_until_consent_is_given_again(world, api, example):
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/hooks")
    first = recipients(await post(world, example))
    await withdrawn(world, (await carried(world, SMS))["id"])

    second = recipients(await post(world, example))  # carries the same, now withdrawn, record
    assert second["SMS-LEEDS"] is None and second["N07"]
    assert [m["id"] for m in await inbox(world, "SMS-LEEDS")] == [first["SMS-LEEDS"]]
    assert len((await history(world))["items"]) == 2

    await record(world, consent(SMS, "given"), code="SMS-LEEDS")
    third = recipients(await post(world, example))
    items = await inbox(world, "SMS-LEEDS")
    assert [m["id"] for m in items] == [first["SMS-LEEDS"], third["SMS-LEEDS"]]
    _, claims = await verified(api, items[1]["jws"], "SMS-LEEDS")
    assert "pnc_number" not in claims["disclosure"]["person"]
    assert claims["disclosure"]["release_plan"] == example["release_plan"]


# --- what a revoked message and a withdrawal notice leave behind ------------------------------


async def test_a_revoked_message_is_not_followed_by_a_cancellation(world, example, settings):
    with running_receiver() as receiver:
        await subscribe(world, "SMS-LEEDS", f"{receiver.url}/SMS-LEEDS")
        notice = await post(world, example)
        assert (await withdrawn(world, (await carried(world, SMS))["id"]))["revoked"]
        cancelled = await change(world, notice["id"], "cancellation", {"reason": "other"})
        assert "SMS-LEEDS" not in recipients(cancelled)
        assert await work(world, settings) == 0
        assert receiver.requests == []


async def test_no_disclosure_relying_on_a_withdrawn_consent_is_delivered_after_it(
    world, example, settings
):
    with running_receiver() as receiver:
        await subscribe(world, "SMS-LEEDS", f"{receiver.url}/SMS-LEEDS")
        notice = await post(world, example)
        first = recipients(notice)["SMS-LEEDS"]
        amended = recipients(await change(world, notice["id"], "amendments", example))
        answer = await withdrawn(world, (await carried(world, SMS))["id"])
        # Both undelivered: the superseded one was revoked by the amendment, the latest now.
        assert answer["revoked"] == [amended["SMS-LEEDS"]]
        assert answer["redisclosed"] == []
        assert [(m, d["reason"]) for m, d in await log(world, "message.revoked")] == [
            (hexid(first), "superseded"),
            (hexid(amended["SMS-LEEDS"]), "consent_withdrawn"),
        ]
        await work(world, settings)
        assert [json.loads(r.body)["type"] for r in receiver.requests] == []


async def test_a_recipient_told_of_a_withdrawal_is_still_told_of_a_cancellation(world, example):
    example["consent"][1]["decision"] = "given"
    notice = await post(world, example)
    disclosed = recipients(notice)["N07"]
    [told] = (await withdrawn(world, (await carried(world, CLINICAL))["id"]))["notified"]
    cancelled = await change(world, notice["id"], "cancellation", {"reason": "entered_in_error"})
    assert "N07" in recipients(cancelled)
    kinds = [(m["kind"], m["supersedes"]) for m in await inbox(world, "N07")]
    assert kinds == [
        ("disclosure", None),
        ("consent_withdrawn", disclosed),
        ("cancellation", disclosed),
    ]
    assert told != disclosed
