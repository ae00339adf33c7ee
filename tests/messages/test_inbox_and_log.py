"""What recipients receive (signed, minimised, only their own) and what auditors can read."""

from __future__ import annotations

import copy
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from app.notices import examples
from tests.helpers.documents import personal_values

ISSUER = "http://exchange.test"
PROBLEM = "application/problem+json"
CLINICAL_NOTES = "/nps_use/treatment_in_custody/clinical_notes"
RECORDED_BY = "Healthcare, HMP Moorland"


def consent(scope: str, decision: str, at: str) -> dict[str, str]:
    return {"scope": scope, "decision": decision, "recorded_at": at, "recorded_by": RECORDED_BY}


def with_consents(example: dict[str, Any], records: list[dict[str, str]]) -> dict[str, Any]:
    """The example with these consents, their times moved with the example's (to today)."""
    body = copy.deepcopy(example)
    body["consent"] = examples.moved(records, datetime.now(UTC).date() - examples.WRITTEN_ON)
    return body


async def post(world, body: dict[str, Any]) -> dict[str, Any]:
    response = await world.post_notice(body)
    assert response.status_code == 202, response.text
    return response.json()


def message_ids(accepted: dict[str, Any]) -> dict[str, str | None]:
    return {r["organisation_code"]: r["message_id"] for r in accepted["recipients"]}


async def inbox(world, code: str, **params: Any) -> dict[str, Any]:
    response = await world.api.get("/v1/messages", params=params, headers=await world.headers(code))
    assert response.status_code == 200, response.text
    return response.json()


async def verified(api, jws: str, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a message, checked with PyJWT against the published JWKS only."""
    header = jwt.get_unverified_header(jws)
    keys = (await api.get("/.well-known/jwks.json")).json()["keys"]
    (key,) = [jwt.PyJWK(k) for k in keys if k["kid"] == header["kid"]]
    claims = jwt.decode(jws, key, algorithms=["ES256"], audience=audience, issuer=ISSUER)
    return header, claims


async def received(world, api, code: str, message_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/messages/{message_id}", headers=await world.headers(code))
    assert response.status_code == 200, response.text
    return (await verified(api, response.json()["jws"], code))[1]


def assert_problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["status"] == status
    return response.json()


# --- the inbox -------------------------------------------------------------------------------


async def test_each_recipient_gets_one_signed_message_of_its_own(world, api, example):
    accepted = await post(world, example)
    ids = message_ids(accepted)

    items = (await inbox(world, "N07"))["items"]
    assert [m["id"] for m in items] == [ids["N07"]]
    assert items[0]["notice_id"] == accepted["id"]
    header, claims = await verified(api, items[0]["jws"], "N07")
    assert header["typ"] == "disclosure+jwt" and header["alg"] == "ES256"
    assert claims["aud"] == "N07" and claims["iss"] == ISSUER
    assert claims["jti"] == ids["N07"]
    assert claims["sub"] == "A1234BC"
    assert claims["notice_id"] == accepted["id"]
    assert isinstance(claims["disclosure"], dict) and claims["disclosure"]
    assert isinstance(claims["manifest"], list)
    assert isinstance(claims["policy"]["version"], str) and claims["policy"]["version"]
    assert re.fullmatch(r"[0-9a-f]{64}", claims["policy"]["sha256"])

    sms_items = (await inbox(world, "SMS-LEEDS"))["items"]
    assert [m["id"] for m in sms_items] == [ids["SMS-LEEDS"]]
    _, sms_claims = await verified(api, sms_items[0]["jws"], "SMS-LEEDS")
    assert sms_claims["jti"] == ids["SMS-LEEDS"]
    with pytest.raises(jwt.InvalidAudienceError):  # a message for one recipient is not another's
        await verified(api, sms_items[0]["jws"], "N07")


@pytest.mark.parametrize("outsider", ["N99", "SMS-LEEDS"])
async def test_another_recipient_cannot_see_the_message(world, api, example, outsider):
    n07_message = message_ids(await post(world, example))["N07"]
    response = await api.get(f"/v1/messages/{n07_message}", headers=await world.headers(outsider))
    assert_problem(response, 404)
    assert n07_message not in [m["id"] for m in (await inbox(world, outsider))["items"]]


async def test_an_uninvolved_recipient_has_an_empty_inbox(world, example):
    await post(world, example)
    assert await inbox(world, "N99") == {"items": [], "next_cursor": None}


async def test_inbox_sequences_and_pages(world, example):
    posted = [message_ids(await post(world, example))["N07"] for _ in range(3)]

    everything = (await inbox(world, "N07"))["items"]
    assert [m["sequence"] for m in everything] == [1, 2, 3]
    assert [m["id"] for m in everything] == posted

    after_one = (await inbox(world, "N07", after=1))["items"]
    assert [m["sequence"] for m in after_one] == [2, 3]

    first = await inbox(world, "N07", limit=2)
    assert [m["sequence"] for m in first["items"]] == [1, 2]
    assert first["next_cursor"] is not None
    second = await inbox(world, "N07", limit=2, cursor=first["next_cursor"])
    assert [m["sequence"] for m in second["items"]] == [3]
    assert second["next_cursor"] is None


# --- what the policy lets each recipient see -------------------------------------------------

SMS_GIVEN = consent("substance_misuse_service", "given", "2026-11-18T14:05:00Z")
SMS_REFUSED = consent("substance_misuse_service", "refused", "2026-11-18T14:05:00Z")
SMS_WITHDRAWN = consent("substance_misuse_service", "refused", "2026-11-21T10:00:00Z")
CLINICAL_REFUSED = consent("probation_clinical_details", "refused", "2026-11-18T14:06:00Z")
CLINICAL_GIVEN_LATER = consent("probation_clinical_details", "given", "2026-11-19T09:30:00Z")
CLINICAL_GIVEN_OFFSET = consent("probation_clinical_details", "given", "2026-11-19T00:30:00+01:00")
CLINICAL_REFUSED_AFTER_OFFSET = consent(
    "probation_clinical_details", "refused", "2026-11-18T23:45:00Z"
)

# (consent records, probation sees the clinical notes, the treatment service gets a message)
CONSENT_CASES = {
    "as in the example": ([SMS_GIVEN, CLINICAL_REFUSED], False, True),
    "clinical consent given later": (
        [SMS_GIVEN, CLINICAL_REFUSED, CLINICAL_GIVEN_LATER],
        True,
        True,
    ),
    "treatment service refused, so everything is": ([SMS_REFUSED, CLINICAL_REFUSED], False, False),
    "treatment consent withdrawn later": (
        [SMS_GIVEN, SMS_WITHDRAWN, CLINICAL_REFUSED],
        False,
        False,
    ),
    "only clinical consent given": ([CLINICAL_GIVEN_LATER], True, False),
    "no consent recorded": ([], False, False),
    # 23:30Z given (written as 00:30+01:00), refused at 23:45Z: the refusal is the later one.
    "refusal later than a consent in another offset": (
        [SMS_GIVEN, CLINICAL_GIVEN_OFFSET, CLINICAL_REFUSED_AFTER_OFFSET],
        False,
        True,
    ),
}


@pytest.mark.parametrize("case", list(CONSENT_CASES))
async def test_disclosures_follow_the_policy(world, api, example, case):
    records, notes_to_probation, sms_gets_message = CONSENT_CASES[case]
    accepted = await post(world, with_consents(example, records))
    ids = message_ids(accepted)

    probation = await received(world, api, "N07", ids["N07"])
    disclosure, manifest = probation["disclosure"], probation["manifest"]
    # Safeguarding always reaches probation, whatever was consented.
    assert disclosure["safeguarding"] == example["safeguarding"]
    assert disclosure["person"]["noms_number"] == "A1234BC"
    treatment = disclosure["nps_use"]["treatment_in_custody"]
    assert treatment["detoxification"] is True
    notes_entry = {
        "path": CLINICAL_NOTES,
        "rule": "probation.clinical-notes",
        "reason": "consent_not_given",
    }
    if notes_to_probation:
        assert (
            treatment["clinical_notes"]
            == example["nps_use"]["treatment_in_custody"]["clinical_notes"]
        )
        assert CLINICAL_NOTES not in [w["path"] for w in manifest]
    else:
        assert "clinical_notes" not in treatment
        assert notes_entry in manifest
        assert "sleep disturbance" not in str(probation)

    sms_items = (await inbox(world, "SMS-LEEDS"))["items"]
    if sms_gets_message:
        assert uuid.UUID(ids["SMS-LEEDS"])
        assert [m["id"] for m in sms_items] == [ids["SMS-LEEDS"]]
    else:
        assert ids["SMS-LEEDS"] is None
        assert sms_items == []


async def test_the_treatment_service_never_gets_the_pnc_number(world, api, example):
    ids = message_ids(await post(world, example))
    claims = await received(world, api, "SMS-LEEDS", ids["SMS-LEEDS"])
    assert "pnc_number" not in claims["disclosure"]["person"]
    assert claims["disclosure"]["safeguarding"] == example["safeguarding"]
    assert {
        "path": "/person/pnc_number",
        "rule": "sms.no-criminal-record-identifiers",
        "reason": "not_necessary",
    } in claims["manifest"]


# --- the exchange log ------------------------------------------------------------------------


async def audit_entries(world, **params: Any):
    return await world.api.get(
        "/v1/audit/entries", params=params, headers=await world.headers("AUDIT")
    )


async def all_entries(world, **params: Any) -> list[dict[str, Any]]:
    response = await audit_entries(world, limit=200, **params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


async def test_the_log_records_a_notice_without_its_values(world, example):
    notice_id = (await post(world, example))["id"]
    response = await audit_entries(world, notice_id=notice_id)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert all(e["notice_id"] == notice_id for e in items)
    actions = Counter(e["action"] for e in items)
    assert actions["notice.received"] == 1
    assert actions["disclosure.decided"] == 2
    assert actions["message.signed"] == 2

    whole_log = await audit_entries(world, limit=200)
    for text in (response.text, whole_log.text):
        leaked = [value for value in personal_values(example) if value in text]
        assert leaked == []


async def test_the_log_filters_by_action(world, example):
    for _ in range(2):
        await post(world, example)
    items = await all_entries(world, action="message.signed")
    assert len(items) == 4
    assert {e["action"] for e in items} == {"message.signed"}


@pytest.mark.parametrize(
    ("since", "expect_entries"),
    [("2000-01-01T00:00:00Z", True), ("2100-01-01T00:00:00+00:00", False)],
)
async def test_the_log_filters_by_time(world, example, since, expect_entries):
    await post(world, example)
    items = await all_entries(world, since=since)
    assert bool(items) is expect_entries
    if expect_entries:  # (each query adds an audit.consulted entry of its own)
        events = [i["id"] for i in items if i["action"] != "audit.consulted"]
        everything = await all_entries(world)
        assert events == [i["id"] for i in everything if i["action"] != "audit.consulted"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("since", "9999-12-31T23:59:59-01:00"), ("until", "0001-01-01T00:00:00+01:00")],
)
async def test_an_instant_beyond_utcs_range_is_refused_not_a_500(world, name, value):
    body = assert_problem(await audit_entries(world, **{name: value}), 422)
    assert [e["pointer"] for e in body["errors"]] == [f"/{name}"]


async def test_a_naive_since_is_refused(world, example):
    await post(world, example)
    body = assert_problem(await audit_entries(world, since="2026-01-01T00:00:00"), 422)
    assert [e["pointer"] for e in body["errors"]] == ["/since"]


async def test_the_log_pages_by_cursor_without_repeats(world, example):
    for _ in range(2):
        await post(world, example)
    # Each query logs itself (audit.consulted), so the log grows while it is paged through.
    events = lambda items: [e["id"] for e in items if e["action"] != "audit.consulted"]  # noqa: E731
    expected = events(await all_entries(world))
    seen: list[int] = []
    seen_events: list[int] = []
    cursor, pages = None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await audit_entries(world, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [e["id"] for e in page["items"]]
        seen_events += events(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages <= 3 * len(expected)  # a cursor that never advances would loop for ever
    assert seen_events == expected
    assert len(set(seen)) == len(seen) and seen == sorted(seen)
    assert pages >= len(expected) // 2
