"""Intake: the example is accepted; malformed notices are refused as problems, storing nothing."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest

PROBLEM = "application/problem+json"
DROP = object()


def changed(example: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    """A copy of the example with the member at `pointer` set to value, or removed with DROP."""
    body = copy.deepcopy(example)
    *parents, last = pointer.strip("/").split("/")
    target: Any = body
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is DROP:
        del target[key]
    else:
        target[key] = value
    return body


def json_body(make: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda example: {"json": make(example)}


def raw_body(content: bytes) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda _: {"content": content, "headers": {"content-type": "application/json"}}


def at(pointer: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return json_body(lambda example: changed(example, pointer, value))


# (case, request maker, the pointers the 422 must name: exactly these). A body that is not JSON
# has no fields: the pointer is "" (the whole document), not the offset of the syntax error.
MALFORMED = [
    ("body not JSON", raw_body(b'{"person": {"noms_number": '), {""}),
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
]


def assert_problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body


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


@pytest.mark.parametrize(
    ("make", "pointers"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
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
