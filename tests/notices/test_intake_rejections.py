"""Intake: the example is accepted; malformed notices are refused as problems, storing nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.api.bodies import MAX_BODY_BYTES
from tests.helpers.notices import DROP, JSON, Maker, at, changed, edits, json_body, raw_body
from tests.helpers.problems import assert_problem


# Dates and times relative to when the request is made: intake judges them by its arrival.
def day(offset: int) -> Callable[[], str]:
    return lambda: (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def instant(minutes: int) -> Callable[[], str]:
    return lambda: (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def born(years: int, days_later: int = 0) -> Maker:
    """A date of birth `days_later` than the one making the person `years` old on release day."""

    def make(example: dict[str, Any]) -> dict[str, Any]:
        release = date.fromisoformat(example["release"]["release_date"])
        try:
            birthday = release.replace(year=release.year - years)
        except ValueError:  # released on 29 February
            birthday = release.replace(year=release.year - years, day=28)
        dob = (birthday + timedelta(days=days_later)).isoformat()
        return changed(example, "/person/date_of_birth", dob)

    return json_body(make)


def as_json(example: Any) -> bytes:
    return json.dumps(example).encode()  # escapes what is not ASCII, even lone surrogates


def typed(content_type: str | None, encode: Callable[[Any], bytes] = as_json) -> Maker:
    """The notice as bytes (UTF-8 JSON unless `encode` says otherwise) with this content type."""
    headers = {"content-type": content_type} if content_type else {}
    return lambda example: {"content": encode(example), "headers": headers}


def padded(size: int) -> Callable[[dict], bytes]:
    """The notice as JSON, padded with trailing spaces to exactly `size` bytes."""
    return lambda example: as_json(example).ljust(size, b" ")


def streamed(encode: Callable[[dict], bytes], chunk: int) -> Maker:
    """The body sent chunked, in pieces, with no Content-Length."""

    def make(example: dict[str, Any]) -> dict[str, Any]:
        content = encode(example)

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(content), chunk):
                yield content[start : start + chunk]

        return {"content": pieces(), "headers": {"content-type": JSON}}

    return make


IMPLAUSIBLE = {
    "/release/release_date": day(200),
    "/nps_use/last_use_date": day(2),
    "/nps_use/incidents_in_custody/0/date": day(3),
    "/nps_use/incidents_in_custody/1/date": day(4),
    "/consent/0/recorded_at": instant(60),
}
# (case, request maker, the pointers the 422 must name: exactly these[, a known bug]). A body that
# is not JSON has no fields: the pointer is "" (the whole document), not the syntax error's offset.
MALFORMED = [
    ("body not JSON", raw_body(b'{"person": {"noms_number": '), {""}),
    ("body not UTF-8", raw_body(b'{"person": {"given_name": "\xff\xfe"}}'), {""}),
    ("body truncated by one byte", typed(JSON, lambda e: as_json(e)[:-1]), {""}),
    ("arrays nested 100000 deep", raw_body(b"[" * 100_000), {""}),
    ("arrays nested and closed", raw_body(b"[" * 100_000 + b"]" * 100_000), {""}),
    (
        "lone surrogate in a name",
        typed(JSON, lambda e: as_json(changed(e, "/person/given_name", "\ud800"))),
        {"/person/given_name"},
    ),
    ("body a JSON array", json_body(lambda e: [e]), {""}),
    (
        "empty object",
        json_body(lambda _: {}),
        {"/person", "/release", "/release_plan", "/nps_use", "/safeguarding"},
    ),
    ("missing person", at("/person", DROP), {"/person"}),
    (
        "missing children_contact",
        at("/safeguarding/children_contact", DROP),
        {"/safeguarding/children_contact"},
    ),
    ("unknown top-level field", at("/favourite_colour", "green"), {"/favourite_colour"}),
    ("unknown nested field", at("/nps_use/colour", "green"), {"/nps_use/colour"}),
    ("on_licence a string", at("/release/on_licence", "yes"), {"/release/on_licence"}),
    ("noms_number a number", at("/person/noms_number", 123), {"/person/noms_number"}),
    ("null safeguarding", at("/safeguarding", None), {"/safeguarding"}),
    (
        "children_contact maybe",
        at("/safeguarding/children_contact", "maybe"),
        {"/safeguarding/children_contact"},
    ),
    (
        "substance category cocaine",
        at("/nps_use/substances/1/category", "cocaine"),
        {"/nps_use/substances/1/category"},
    ),
    # RFC 3339 (DESIGN section 6) needs an offset; without one, consents cannot be ordered.
    (
        "consent time without offset",
        at("/consent/0/recorded_at", "2026-11-18T14:05:00"),
        {"/consent/0/recorded_at"},
    ),
    (
        "consent time beyond UTC's range",
        at("/consent/0/recorded_at", "9999-12-31T23:59:59-01:00"),
        {"/consent/0/recorded_at"},
    ),
    ("NOMS number format", at("/person/noms_number", "1234ABC"), {"/person/noms_number"}),
    (
        "date of birth not a date",
        at("/person/date_of_birth", "17/03/1994"),
        {"/person/date_of_birth"},
    ),
    (
        "probation provider not registered",
        at("/release_plan/probation_provider", "N42"),
        {"/release_plan/probation_provider"},
    ),
    (
        "substance misuse service of the wrong kind",
        at("/release_plan/substance_misuse_service", "N99"),
        {"/release_plan/substance_misuse_service"},
    ),
    (
        "probation provider that is a prison",
        at("/release_plan/probation_provider", "LPI"),
        {"/release_plan/probation_provider"},
    ),
    # What cannot be true of a notice when it arrives (notice.implausible).
    ("released 29 days ago", at("/release/release_date", day(-29)), {"/release/release_date"}),
    ("released in 184 days", at("/release/release_date", day(184)), {"/release/release_date"}),
    ("last use in 2 days", at("/nps_use/last_use_date", day(2)), {"/nps_use/last_use_date"}),
    (
        "incident in 2 days",
        at("/nps_use/incidents_in_custody/1/date", day(2)),
        {"/nps_use/incidents_in_custody/1/date"},
    ),
    (
        "consent an hour ahead",
        at("/consent/1/recorded_at", instant(60)),
        {"/consent/1/recorded_at"},
    ),
    ("9 on release day", born(10, days_later=1), {"/person/date_of_birth"}),
    ("121 on release day", born(121), {"/person/date_of_birth"}),
    ("born after release", at("/person/date_of_birth", day(30)), {"/person/date_of_birth"}),
    ("each implausible date at once", edits(*IMPLAUSIBLE.items()), set(IMPLAUSIBLE)),
    (
        "implausible date and unregistered provider",
        edits(("/release/release_date", day(200)), ("/release_plan/probation_provider", "N42")),
        {"/release/release_date", "/release_plan/probation_provider"},
    ),
    (
        "date of birth as a JSON number",
        at("/person/date_of_birth", 0),
        {"/person/date_of_birth"},
    ),
    (
        "consent time as a JSON number",
        at("/consent/0/recorded_at", 1e9),
        {"/consent/0/recorded_at"},
    ),
    ("date in another shape", at("/release/release_date", "20261201"), {"/release/release_date"}),
    ("NaN is not JSON", raw_body(b'{"person": NaN}'), {""}),
    ("nested deeper than 32", raw_body(b"[" * 33 + b"]" * 33), {""}),
    # Once quadratic in a scanning regex: minutes of one core, before authentication.
    ("an unterminated string of escapes", raw_body(b'"' + b'\\"' * 100_000), {""}),
    (
        "appointment long past",
        at("/release_plan/treatment_appointment/date", day(-29)),
        {"/release_plan/treatment_appointment/date"},
    ),
    (
        "appointment over a year ahead",
        at("/release_plan/treatment_appointment/date", day(367)),
        {"/release_plan/treatment_appointment/date"},
    ),
    *[
        (f"CRN {crn!r}", at("/person/crn", crn), {"/person/crn"})
        for crn in ["x123456", "X12345", "X1234567", "1234567", "X123456\n", "X12345\uff16"]
    ],
    *[
        (f"PNC {pnc!r}", at("/person/pnc_number", pnc), {"/person/pnc_number"})
        for pnc in [
            "2001/0123456",
            "2001/0123456a",
            "1/0123456A",
            "20011/1A",
            "2001/12345678A",
            "2001-0123456A",
            "2001/A",
            "2001/0123456A\n",
        ]
    ],
]

# Accepted at the edge of what the checks allow: (case, request maker).
ACCEPTABLE = [
    ("released exactly 28 days ago", at("/release/release_date", day(-28))),
    ("released in exactly 183 days", at("/release/release_date", day(183))),
    ("last use today", at("/nps_use/last_use_date", day(0))),
    ("incident today", at("/nps_use/incidents_in_custody/1/date", day(0))),
    ("consent 4 minutes ahead (clock skew)", at("/consent/1/recorded_at", instant(4))),
    ("10th birthday on release day", born(10)),
    ("120, a day short of 121, on release day", born(121, days_later=1)),
    (
        "CRN and PNC at their shortest",
        edits(("/person/crn", "A000000"), ("/person/pnc_number", "01/1Z")),
    ),
    ("charset=utf-8", typed("application/json; charset=utf-8")),
    ("charset quoted, in capitals", typed('Application/JSON; charset="UTF-8"')),
    ("exactly the size limit", typed(JSON, padded(MAX_BODY_BYTES))),
    ("streamed in 1000-byte pieces", streamed(as_json, 1000)),
]

# Refused before any handler by what the body is: (case, request maker, status).
UNACCEPTABLE = [
    ("one byte over the limit", typed(JSON, padded(MAX_BODY_BYTES + 1)), 413),
    ("streamed past the limit", streamed(padded(MAX_BODY_BYTES + 1), 65536), 413),
    ("streamed far past the limit", streamed(padded(4 * MAX_BODY_BYTES), 65536), 413),
    ("text/plain", typed("text/plain"), 415),
    # The contract names application/json only: a +json type is not it (nor a merge patch).
    ("a +json type", typed("application/merge-patch+json"), 415),
    ("a vendor +json type", typed("application/vnd.api+json"), 415),
    ("form-encoded", lambda _: {"data": {"person": "A1234BC"}}, 415),
    (
        "JSON in UTF-16",
        typed("application/json; charset=utf-16", lambda e: json.dumps(e).encode("utf-16")),
        415,
    ),
    ("UTF-8 labelled Latin-1", typed("application/json; charset=iso-8859-1"), 415),
    ("no content type", typed(None), 415),
]


async def test_the_example_is_accepted_and_routed(world, example):
    response = await world.post_notice(example)
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/release-notices/{body['id']}"
    routed = {r["organisation_code"]: r for r in body["recipients"]}
    assert {code: r["role"] for code, r in routed.items()} == {
        "N07": "probation_provider",
        "SMS-LEEDS": "substance_misuse_service",
    }
    for recipient in routed.values():
        assert uuid.UUID(recipient["message_id"])


def known_bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG: {reason}")


@pytest.mark.parametrize(
    ("make", "pointers"),
    [pytest.param(*c[1:3], id=c[0], marks=[known_bug(r) for r in c[3:]]) for c in MALFORMED],
)
async def test_malformed_notices_are_refused_and_store_nothing(world, api, example, make, pointers):
    headers = await world.headers("MDI")  # the client is registered before counting
    before = await world.counts()
    request = make(example)
    request["headers"] = {**headers, **request.get("headers", {})}

    response = await api.post("/v1/release-notices", **request)

    assert response.status_code < 500, response.text
    body = assert_problem(response, 422)
    assert {e["pointer"] for e in body["errors"]} == pointers
    assert all(e["detail"] for e in body["errors"])
    assert "Traceback" not in response.text
    assert await world.counts() == before


@pytest.mark.parametrize("make", [c[1] for c in ACCEPTABLE], ids=[c[0] for c in ACCEPTABLE])
async def test_notices_at_the_edges_are_accepted(world, api, example, make):
    headers = await world.headers("MDI")
    before = await world.counts()
    request = make(example)
    request["headers"] = {**headers, **request.get("headers", {})}

    response = await api.post("/v1/release-notices", **request)

    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/release-notices/{response.json()['id']}"
    after = await world.counts()
    assert (after["release_notice"], after["message"]) == (1, before["message"] + 2)


@pytest.mark.parametrize(
    ("make", "status"), [c[1:] for c in UNACCEPTABLE], ids=[c[0] for c in UNACCEPTABLE]
)
async def test_unacceptable_bodies_are_refused_before_intake(world, api, example, make, status):
    headers = await world.headers("MDI")
    before = await world.counts()
    request = make(example)
    request["headers"] = {**headers, **request.get("headers", {})}

    response = await api.post("/v1/release-notices", **request)

    body = assert_problem(response, status)
    assert "errors" not in body and "Traceback" not in response.text
    assert await world.counts() == before


async def test_the_token_endpoint_takes_a_form_and_nothing_else(world, api):
    client_id, secret = await world.credentials("MDI")
    grant = {"grant_type": "client_credentials"}
    as_json = await api.post("/oauth/token", json=grant, auth=(client_id, secret))
    assert_problem(as_json, 415)
    as_form = await api.post("/oauth/token", data=grant, auth=(client_id, secret))
    assert as_form.status_code == 200, as_form.text
    assert as_form.json()["access_token"]


async def test_nesting_of_any_depth_is_a_422_naming_the_whole_body(world, api):
    """The recursion limit leaves a band of depths where the first parse of the body succeeds
    and the second, further down the stack, fails: every depth must still be the same 422."""
    headers = {**await world.headers("MDI"), "content-type": "application/json"}
    before = await world.counts()
    answers: dict[tuple[int, str], list[int]] = {}
    for depth in range(600, 1001):
        response = await api.post(
            "/v1/release-notices", content=b"[" * depth + b"]" * depth, headers=headers
        )
        pointers = ",".join(e["pointer"] for e in response.json().get("errors", []))
        answers.setdefault((response.status_code, pointers), []).append(depth)
    assert list(answers) == [(422, "")], {k: (min(v), max(v)) for k, v in answers.items()}
    assert await world.counts() == before


async def test_a_refused_notice_leaves_no_trace_even_after_an_accepted_one(world, api, example):
    """Refusal must roll back everything, also when the tables already hold rows."""
    assert (await world.post_notice(example)).status_code == 202
    before = await world.counts()
    bad = changed(example, "/release_plan/substance_misuse_service", "N99")
    assert_problem(await world.post_notice(bad), 422)
    assert await world.counts() == before
    assert before["message"] == 2 and before["release_notice"] == 1


# --- following a notice ----------------------------------------------------------------------


async def _posted(world, example) -> str:
    response = await world.post_notice(example)
    assert response.status_code == 202, response.text
    return response.json()["id"]


async def test_a_prison_cannot_post_another_prisons_release(world, example):
    """The exchange signs what it sends: it must not vouch for a release LPI did not make."""
    await world.token("LPI")
    before = await world.counts()
    body = assert_problem(await world.post_notice(example, "LPI"), 422)
    assert [e["pointer"] for e in body["errors"]] == ["/release/prison_code"]
    assert await world.counts() == before


async def test_the_posting_prison_sees_its_notice(world, api, example):
    notice_id = await _posted(world, example)
    response = await api.get(f"/v1/release-notices/{notice_id}", headers=await world.headers("MDI"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == notice_id
    routed = {r["organisation_code"]: r for r in body["recipients"]}
    assert set(routed) == {"N07", "SMS-LEEDS"}
    assert routed["N07"]["role"] == "probation_provider"
    assert routed["SMS-LEEDS"]["role"] == "substance_misuse_service"
    assert all(uuid.UUID(r["message_id"]) for r in routed.values())
    assert "A1234BC" not in response.text  # a status, not the notice again


@pytest.mark.parametrize(
    ("who", "which", "status"),
    [
        ("LPI", "posted", 404),
        ("MDI", "random", 404),
        ("MDI", "not-a-uuid", 422),
    ],
)
async def test_notices_that_are_not_yours_or_not_there(world, api, example, who, which, status):
    notice_id = await _posted(world, example)
    path_id = {"posted": notice_id, "random": str(uuid.uuid4()), "not-a-uuid": "not-a-uuid"}[which]
    response = await api.get(f"/v1/release-notices/{path_id}", headers=await world.headers(who))
    body = assert_problem(response, status)
    assert "recipients" not in body and "N07" not in response.text
    if status == 422:
        assert [e["pointer"] for e in body["errors"]] == ["/notice_id"]
