"""A person's consent records: recorded, listed with what stands, carried in notices, obeyed.

On both databases. Withdrawal and its effects on messages are in tests/consent/test_withdrawal.py;
the helpers both use are in tests/helpers/consents.py. Signed messages are checked with PyJWT
against the JWKS only.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers.consents import (
    CLINICAL,
    CLINICAL_NOTES,
    NOMS,
    OTHER,
    SMS,
    as_json,
    consent,
    hexid,
    history,
    instant,
    introduce,
    people,
    post,
    recipients,
    record,
    rfc3339,
    withdraw,
)
from tests.helpers.documents import personal_values
from tests.helpers.messages import inbox, verified
from tests.helpers.problems import assert_problem

PROBLEM = "application/problem+json"


# --- recording -------------------------------------------------------------------------------


async def test_a_recorded_consent_is_answered_stored_under_a_keyed_hash_and_logged(world):
    await introduce(world)  # a notice about the person was decided for SMS-LEEDS
    before = datetime.now(UTC)
    expires = rfc3339(before + timedelta(days=30))
    created = await record(world, consent(SMS, "given", expires_at=expires), code="SMS-LEEDS")
    after = datetime.now(UTC)

    assert (created["scope"], created["decision"], created["source"]) == (SMS, "given", "api")
    assert created["recorded_by"] == "Healthcare, HMP Moorland"
    assert instant(created["expires_at"]) == instant(expires)
    assert created["withdrawn_at"] is None and created["voided_at"] is None
    assert before <= instant(created["recorded_at"]) == instant(created["created_at"]) <= after
    ref = world.data_keys.person_ref(NOMS)
    assert ref not in (NOMS, hashlib.sha256(NOMS.encode()).hexdigest())  # keyed, not bare
    rows = await world.sql("SELECT id, person_ref, scope, decision, notice_id FROM consent")
    assert [(hexid(r[0]), *r[1:]) for r in rows] == [
        (hexid(created["id"]), ref, SMS, "given", None)
    ]
    [(details, actor)] = await world.sql(
        "SELECT details, actor_organisation_id FROM audit_entry WHERE action = 'consent.recorded'"
    )
    assert as_json(details) == {
        "consent_id": created["id"],
        "person_ref": ref,
        "scope": SMS,
        "decision": "given",
        "expires_at": instant(expires).isoformat(),
    }
    assert hexid(actor) == world.ids["SMS-LEEDS"].hex


async def test_a_time_with_an_offset_is_kept_as_its_instant(world):
    await introduce(world)
    created = await record(
        world, consent(CLINICAL, "refused", recorded_at="2026-01-05T10:15:00+01:00")
    )
    assert created["recorded_at"] == "2026-01-05T09:15:00Z"
    # Compared as instants, not text: 09:30Z is later than 10:15+01:00.
    await record(world, consent(CLINICAL, "given", recorded_at="2026-01-05T09:30:00Z"))
    assert (await history(world))["standing"] == {CLINICAL: True}


MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
# case: (changes to a valid body, a timedelta meaning that long from now; the failing pointers)
INVALID = {
    "recorded_at in the future": ({"recorded_at": 6 * MINUTE}, ["/recorded_at"]),
    "expires_at before recorded_at": (
        {"recorded_at": -2 * DAY, "expires_at": -3 * DAY},
        ["/expires_at"],
    ),
    "expires_at at recorded_at": (
        {"recorded_at": -2 * DAY, "expires_at": -2 * DAY},
        ["/expires_at"],
    ),
    "expires_at before now, recorded_at defaulted": ({"expires_at": -MINUTE}, ["/expires_at"]),
    "recorded_at without an offset": ({"recorded_at": "2026-01-05T10:15:00"}, ["/recorded_at"]),
    "empty recorded_by": ({"recorded_by": ""}, ["/recorded_by"]),
    "recorded_by of 201 characters": ({"recorded_by": "x" * 201}, ["/recorded_by"]),
    "unknown scope": ({"scope": "everything"}, ["/scope"]),
    "unknown decision": ({"decision": "maybe"}, ["/decision"]),
    "unknown member": ({"person": "Daniel Hughes"}, ["/person"]),
    "no recorded_by": ({"recorded_by": None}, ["/recorded_by"]),
}
BAD_NOMS = ["a1234bc", "A1234B", "A12345BC", "11234BC", "A1234BCD"]


async def test_an_invalid_consent_is_a_422_naming_the_field_and_changes_nothing(world):
    await introduce(world)
    headers = await world.headers("MDI")
    await world.headers("SMS-LEEDS")  # its client and token, made before the counting
    counts, now = await world.counts(), datetime.now(UTC)
    for case, (changes, pointers) in INVALID.items():
        body = consent(SMS, "given")
        for member, value in changes.items():
            if isinstance(value, timedelta):
                value = rfc3339(now + value)
            if value is None:
                del body[member]
            else:
                body[member] = value
        problem = assert_problem(
            await world.api.post(people(), json=body, headers=headers), 422, case
        )
        assert [e["pointer"] for e in problem["errors"]] == pointers, case
    for noms in BAD_NOMS:
        for response in [
            await world.api.post(people(noms), json=consent(SMS, "given"), headers=headers),
            await world.api.get(people(noms), headers=headers),
            await world.api.post(f"{people(noms)}/{uuid.uuid4()}/withdrawal", headers=headers),
        ]:
            problem = assert_problem(response, 422, noms)
            assert [e["pointer"] for e in problem["errors"]] == ["/noms_number"], noms
    # A treatment service records consent to share with treatment services, and no other.
    response = await world.api.post(
        people(), json=consent(CLINICAL, "given"), headers=await world.headers("SMS-LEEDS")
    )
    problem = assert_problem(response, 422, "a service recording clinical consent")
    assert [e["pointer"] for e in problem["errors"]] == ["/scope"]
    assert await world.counts() == counts
    # The bounds themselves are accepted.
    for recorded_by in ["x", "x" * 200]:
        await record(world, {**consent(SMS, "given"), "recorded_by": recorded_by})
    await record(world, consent(SMS, "given", recorded_at=rfc3339(now + 4 * MINUTE)))


async def test_only_prisons_and_the_treatment_service_may_record_or_read_consents(world):
    # Each has a part in the person's notices (those without: consent/test_withdrawal_races.py).
    await introduce(world)  # MDI's, decided for N07 and SMS-LEEDS
    await introduce(world, code="LPI")
    writers = ["MDI", "LPI", "SMS-LEEDS"]
    made = [(await record(world, consent(SMS, "given"), code=code))["id"] for code in writers]
    for code in writers:
        assert [c["id"] for c in (await history(world, code=code))["items"]] == made
    others = ["N07", "N99", "AUDIT", "OPS"]
    for code in others:
        await world.headers(code)  # their clients and tokens, made before the counting
    counts = await world.counts()
    for code in [*others, None]:
        headers = await world.headers(code) if code else {}
        for method, path in [
            ("POST", people()),
            ("GET", people()),
            ("GET", f"{people()}/{made[0]}"),
            ("POST", f"{people()}/{made[0]}/withdrawal"),
        ]:
            body = consent(SMS, "refused") if method == "POST" else None
            response = await world.api.request(method, path, json=body, headers=headers)
            assert_problem(response, 403 if code else 401, f"{code} {method} {path}")
    assert await world.counts() == counts
    assert [c["withdrawn_at"] for c in (await history(world))["items"]] == [None] * 3


# --- history and standing --------------------------------------------------------------------


async def test_history_lists_every_record_oldest_first_and_standing_follows_the_latest_event(
    world,
):
    now = datetime.now(UTC)

    def ago(**delta: float) -> str:
        return rfc3339(now - timedelta(**delta))

    async def add(decision: str, at: str, **extra: Any) -> dict[str, Any]:
        return await record(world, consent(SMS, decision, recorded_at=at, **extra))

    async def standing() -> bool | None:
        return (await history(world))["standing"].get(SMS)

    await introduce(world)
    assert await standing() is None and (await history(world))["items"] == []
    # Recorded out of order: the history is ordered by when the person decided.
    refused = await add("refused", ago(days=8))
    assert await standing() is False
    given = await add("given", ago(days=10))
    assert await standing() is False  # the refusal is later
    expired = await add("given", ago(days=6), expires_at=ago(days=2))
    assert await standing() is False  # given, then expired
    later = await add("given", ago(days=1))
    assert await standing() is True
    lapsing = await add("given", ago(hours=1), expires_at=rfc3339(now + timedelta(days=1)))
    assert await standing() is True  # its expiry has not happened yet
    assert (await withdraw(world, lapsing["id"])).status_code == 200
    assert await standing() is False  # a withdrawal is a refusal from then
    assert (await withdraw(world, expired["id"])).status_code == 200
    future = await add("given", rfc3339(datetime.now(UTC) + timedelta(minutes=4)))
    assert await standing() is False  # a decision not yet made has not happened

    listed = await history(world)
    order = [given, refused, expired, later, lapsing, future]
    assert [c["id"] for c in listed["items"]] == [c["id"] for c in order]
    withdrawn = {c["id"]: instant(c["withdrawn_at"]) for c in listed["items"]}
    assert {k for k, v in withdrawn.items() if v} == {lapsing["id"], expired["id"]}
    assert withdrawn[expired["id"]] > withdrawn[lapsing["id"]] > now
    for item, made in zip(listed["items"], order, strict=True):
        assert {**item, "withdrawn_at": None} == made
    assert listed["standing"] == {SMS: False}
    assert await world.sql("SELECT count(*) FROM consent WHERE withdrawn_at IS NOT NULL") == [(2,)]


async def test_when_events_share_an_instant_the_refusal_wins(world):
    for noms in (NOMS, OTHER):
        await introduce(world, noms)
    at, then = "2026-01-05T09:00:00Z", "2026-01-09T09:00:00Z"
    await record(world, consent(SMS, "given", recorded_at=at))
    await record(world, consent(SMS, "refused", recorded_at=at))
    # An expiry at the very instant of a new decision to give: still a refusal.
    await record(world, consent(CLINICAL, "given", recorded_at=at, expires_at=then))
    await record(world, consent(CLINICAL, "given", recorded_at=then))
    listed = await history(world)
    assert listed["standing"] == {SMS: False, CLINICAL: False}
    assert len(listed["items"]) == 4
    # One person's records are not another's.
    assert (await history(world, OTHER))["items"] == []
    await record(world, consent(SMS, "given"), noms=OTHER)
    assert (await history(world, OTHER))["standing"] == {SMS: True}
    assert (await history(world))["standing"] == {SMS: False, CLINICAL: False}


# --- consent carried in notices --------------------------------------------------------------


async def test_consent_carried_in_a_notice_becomes_records_once(world, example):
    first = await post(world, example)
    items = (await history(world))["items"]
    assert [(c["scope"], c["decision"], c["source"]) for c in items] == [
        (SMS, "given", "notice"),
        (CLINICAL, "refused", "notice"),
    ]
    for item, sent in zip(items, example["consent"], strict=True):
        assert instant(item["recorded_at"]) == instant(sent["recorded_at"])
        assert (item["recorded_by"], item["expires_at"]) == (sent["recorded_by"], None)
    amendment = await world.api.post(
        f"/v1/release-notices/{first['id']}/amendments",
        json=example,
        headers=await world.headers("MDI"),
    )
    assert amendment.status_code == 202, amendment.text
    await post(world, example)  # a new notice carrying the same records
    assert (await history(world))["items"] == items

    refused = example["consent"][1]
    an_hour_on = rfc3339(instant(refused["recorded_at"]) + timedelta(hours=1))
    later = copy.deepcopy(example)
    later["consent"].append({**refused, "decision": "given", "recorded_at": an_hour_on})
    accepted = await post(world, later)
    listed = await history(world)
    assert [c["id"] for c in listed["items"][:2]] == [c["id"] for c in items]
    assert (listed["items"][2]["decision"], listed["items"][2]["source"]) == ("given", "notice")
    assert listed["standing"] == {SMS: True, CLINICAL: True}
    [(notice_id,)] = await world.sql(
        "SELECT notice_id FROM consent WHERE decision = 'given' AND scope = :scope", scope=CLINICAL
    )
    assert hexid(notice_id) == hexid(accepted["id"])
    recorded = await world.sql(
        "SELECT notice_id FROM audit_entry WHERE action = 'consent.recorded'"
    )
    assert len(recorded) == 3 and all(r[0] is not None for r in recorded)


async def test_every_notice_decision_reads_the_records_made_through_the_api(world, api, example):
    known = recipients(await introduce(world))  # no consent: nothing for the treatment service
    assert known["SMS-LEEDS"] is None and known["N07"]
    # Later than the example's own records: clinical detail given, the treatment service refused.
    await record(world, consent(CLINICAL, "given"))
    await record(world, consent(SMS, "refused"))
    accepted = await post(world, example)

    sent = recipients(accepted)
    assert sent["SMS-LEEDS"] is None and sent["N07"]  # nothing at all for the treatment service
    assert await inbox(world, "SMS-LEEDS") == []
    assert [m["id"] for m in await inbox(world, "N07")] == [known["N07"], sent["N07"]]
    item = (await inbox(world, "N07"))[1]
    _, claims = await verified(api, item["jws"], "N07")
    notes = example["nps_use"]["treatment_in_custody"]["clinical_notes"]
    assert claims["disclosure"]["nps_use"]["treatment_in_custody"]["clinical_notes"] == notes
    assert CLINICAL_NOTES not in [w["path"] for w in claims["manifest"]]
    relied = await world.sql(
        "SELECT o.code, d.consents_relied, d.notice_id FROM disclosure d"
        " JOIN organisation o ON o.id = d.recipient_organisation_id"
    )
    assert {
        code: as_json(value)
        for code, value, notice_id in relied
        if hexid(notice_id) == hexid(accepted["id"])
    } == {"N07": [CLINICAL], "SMS-LEEDS": []}

    # A newer decision to give restores the treatment service for the next notice.
    await record(world, consent(SMS, "given"))
    again = await post(world, example)
    [sms_item] = await inbox(world, "SMS-LEEDS")
    assert sms_item["id"] == recipients(again)["SMS-LEEDS"]
    _, sms_claims = await verified(api, sms_item["jws"], "SMS-LEEDS")
    month_of_birth = example["person"]["date_of_birth"][:7]  # the month alone, by policy
    assert sms_claims["disclosure"]["person"]["date_of_birth"] == month_of_birth


# --- the log ---------------------------------------------------------------------------------


async def test_no_noms_number_or_name_reaches_the_exchange_log(world, example):
    await post(world, example)
    await introduce(world, OTHER)
    clinical = await record(world, consent(CLINICAL, "given"))
    await record(world, consent(SMS, "given"), code="SMS-LEEDS", noms=OTHER)
    assert (await withdraw(world, clinical["id"])).status_code == 200  # relied on by nothing
    await history(world)

    rows = await world.sql("SELECT * FROM audit_entry")
    actions = {row._mapping["action"] for row in rows}
    assert {"consent.recorded", "notice.received", "disclosure.decided"} <= actions
    personal = [*personal_values(example), OTHER]  # as sent: its dates move with the clock
    for row in rows:
        text = repr(tuple(row)).lower()
        for value in personal:
            assert value.lower() not in text, (row._mapping["action"], value)
    refs = {world.data_keys.person_ref(NOMS), world.data_keys.person_ref(OTHER)}
    found = [
        str(r._mapping["details"]) for r in rows if r._mapping["action"].startswith("consent.")
    ]
    assert len(found) == 5  # two carried, two recorded, one withdrawn
    assert all(any(ref in text for ref in refs) for text in found)
