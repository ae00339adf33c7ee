"""Requests made by hand that once got a 500 or were read against the contract: each is now an
RFC 9457 4xx naming the field, on SQLite and PostgreSQL alike, and changes nothing.

The notice's own cases are in tests/notices/test_intake_rejections.py, the token endpoint's in
tests/access/test_client_auth.py and tests/access/test_trusted_issuer.py, the operator's in
tests/access/test_organisations_api.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from app.main import ROUTER_MODULES

PROBLEM = "application/problem+json"
HOOK = "http://127.0.0.1:9/hook"
NOMS = "A1234BC"  # the example's person
CONSENT = {"scope": "substance_misuse_service", "decision": "given", "recorded_by": "Healthcare"}
SOME_ID = "00000000-0000-4000-8000-000000000000"


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    return body


@pytest.fixture
async def held(world, example) -> dict[str, str]:
    """What the paths below name: an N07 subscription, with a notice's message in its inbox."""
    assert (await world.post_notice(example)).status_code == 202
    headers = await world.headers("N07")
    created = await world.api.post("/v1/subscriptions", json={"url": HOOK}, headers=headers)
    assert created.status_code == 201, created.text
    for code in ("OPS", "AUDIT"):
        await world.headers(code)  # every client made before anything is counted
    return {"sub": created.json()["id"]}


# (case, caller, method, path, body, the one pointer the 422 names)
WRONG_TYPES = [
    # {"since": 0} replayed every message since 1970; a time is text, never a number.
    ("recover since 0", "N07", "POST", "/v1/subscriptions/{sub}/recover", {"since": 0}, "/since"),
    (
        "recover since 1e9",
        "N07",
        "POST",
        "/v1/subscriptions/{sub}/recover",
        {"since": 1e9},
        "/since",
    ),
    (
        "subscription secret overlap true",
        "N07",
        "POST",
        "/v1/subscriptions/{sub}/secret-rotation",
        {"overlap_seconds": True},
        "/overlap_seconds",
    ),
    ("subscription url, a tab", "N07", "POST", "/v1/subscriptions", {"url": HOOK + "\t"}, "/url"),
    ("subscription url, NUL", "N07", "POST", "/v1/subscriptions", {"url": HOOK + "\x00"}, "/url"),
    (
        "consent recorded_by holding NUL",
        "MDI",
        "POST",
        f"/v1/people/{NOMS}/consents",
        CONSENT | {"recorded_by": "Health\x00care"},
        "/recorded_by",
    ),
    (
        "consent recorded_by on two lines",
        "MDI",
        "POST",
        f"/v1/people/{NOMS}/consents",
        CONSENT | {"recorded_by": "Health\ncare"},
        "/recorded_by",
    ),
    (
        "consent recorded_at 0",
        "MDI",
        "POST",
        f"/v1/people/{NOMS}/consents",
        CONSENT | {"recorded_at": 0},
        "/recorded_at",
    ),
    (
        "acknowledgement note holding NUL",
        "N07",
        "POST",
        f"/v1/messages/{SOME_ID}/acknowledgements",
        {"status": "received", "note": "seen\x00"},
        "/note",
    ),
    # In a query, too: a time is never read from a number, nor a count from a fraction.
    ("audit until 0.5", "AUDIT", "GET", "/v1/audit/entries?until=0.5", None, "/until"),
    ("audit since 0", "AUDIT", "GET", "/v1/audit/entries?since=0", None, "/since"),
    ("audit action NUL", "AUDIT", "GET", "/v1/audit/entries?action=%00", None, "/action"),
    ("audit action, line feed", "AUDIT", "GET", "/v1/audit/entries?action=a%0A", None, "/action"),
    ("audit limit 1.0", "AUDIT", "GET", "/v1/audit/entries?limit=1.0", None, "/limit"),
    ("audit limit 1_0", "AUDIT", "GET", "/v1/audit/entries?limit=1_0", None, "/limit"),
    (
        "inclusion proof at leaf 0.0",
        "AUDIT",
        "GET",
        "/v1/audit/proofs/inclusion?leaf_index=0.0&tree_size=1",
        None,
        "/leaf_index",
    ),
    ("inbox limit ' 5'", "N07", "GET", "/v1/messages?limit=%205", None, "/limit"),
]


@pytest.mark.parametrize(
    ("code", "method", "path", "body", "pointer"),
    [c[1:] for c in WRONG_TYPES],
    ids=[c[0] for c in WRONG_TYPES],
)
async def test_a_value_of_the_wrong_type_or_text_is_a_422_naming_it(
    world, held, code, method, path, body, pointer
):
    headers = await world.headers(code)
    before = await world.counts()
    response = await world.api.request(method, path.format(**held), json=body, headers=headers)
    errors = assert_problem(response, 422)["errors"]
    assert [e["pointer"] for e in errors] == [pointer]
    assert all(e["detail"] and "Value error" not in e["detail"] for e in errors)
    assert await world.counts() == before


# (case, caller, method, path, raw body, the pointer of the member given twice)
TWICE = [
    (
        "an organisation's code",
        "OPS",
        "POST",
        "/v1/organisations",
        b'{"kind": "prison", "code": "PH1", "name": "HMP X", "code": "PH2"}',
        "/code",
    ),
    (
        "a subscription's url",
        "N07",
        "POST",
        "/v1/subscriptions",
        b'{"url": "http://127.0.0.1:9/a", "url": "http://127.0.0.1:9/b"}',
        "/url",
    ),
    (
        "a consent's decision",
        "MDI",
        "POST",
        f"/v1/people/{NOMS}/consents",
        b'{"scope": "substance_misuse_service", "decision": "refused", "decision": "given",'
        b' "recorded_by": "Healthcare"}',
        "/decision",
    ),
    (
        "a change of status",
        "N07",
        "PATCH",
        "/v1/subscriptions/{sub}",
        b'{"status": "active", "status": "disabled"}',
        "/status",
    ),
]


@pytest.mark.parametrize(
    ("code", "method", "path", "content", "pointer"),
    [c[1:] for c in TWICE],
    ids=[c[0] for c in TWICE],
)
async def test_a_member_given_twice_is_refused_wherever_it_is(
    world, held, code, method, path, content, pointer
):
    headers = {**await world.headers(code), "content-type": "application/json"}
    before = await world.counts()
    response = await world.api.request(
        method, path.format(**held), content=content, headers=headers
    )
    (error,) = assert_problem(response, 422)["errors"]
    assert error == {"pointer": pointer, "detail": "is a member given twice"}
    assert await world.counts() == before


@pytest.mark.parametrize("media_type", ["application/merge-patch+json", "application/vnd.api+json"])
async def test_only_application_json_is_taken_as_the_contract_says(world, held, media_type):
    headers = {**await world.headers("N07"), "content-type": media_type}
    before = await world.counts()
    response = await world.api.patch(
        f"/v1/subscriptions/{held['sub']}", content=b'{"status": "disabled"}', headers=headers
    )
    assert_problem(response, 415)
    assert await world.counts() == before


async def test_a_405_allows_every_method_served_at_the_path(app, api):
    """RFC 9110 section 15.5.6: Allow lists each method the path serves, not only those of the
    first route that matched it."""
    checked = 0
    for template, item in app.openapi()["paths"].items():
        served = {m.upper() for m in item}
        path = template.replace("{", "").replace("}", "")  # any text matches a path parameter
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - served):
            response = await api.request(method, path)
            assert_problem(response, 405)
            assert set(response.headers["allow"].split(", ")) == served, (method, template)
            checked += 1
    assert checked > 100
    several = await api.put(f"/v1/subscriptions/{SOME_ID}")
    assert several.headers["allow"] == "DELETE, GET, PATCH"


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def test_every_request_body_is_read_strictly_at_every_depth():
    """No body is coerced against the contract, now or in a model added later."""
    seen: set[type[BaseModel]] = set()
    found = [
        model
        for module in ROUTER_MODULES
        for route in module.router.routes
        for param in route.dependant.body_params
        for model in _models(param.field_info.annotation)
    ]
    while found:
        model = found.pop()
        if model in seen:
            continue
        seen.add(model)
        assert model.model_config.get("strict") is True, model.__name__
        assert model.model_config.get("extra") == "forbid", model.__name__
        found.extend(m for f in model.model_fields.values() for m in _models(f.annotation))
    assert len(seen) > 20  # the notice's own models among them


async def test_a_uuid_given_as_text_is_still_read(world, held):
    """The control for the strict models: text is how JSON gives a UUID or a time."""
    headers = await world.headers("N07")
    recovered = await world.api.post(
        f"/v1/subscriptions/{held['sub']}/recover", json={"since": now_text()}, headers=headers
    )
    assert recovered.status_code == 202, recovered.text
    redelivered = await world.api.post(
        f"/v1/messages/{uuid.uuid4()}/redeliver",
        json={"subscription_id": held["sub"]},
        headers=headers,
    )
    assert_problem(redelivered, 404)  # read, and then no such message
