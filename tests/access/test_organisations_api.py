"""The operator's API, /v1/organisations: organisations and their clients, each change logged
with the operator as its actor, and nothing of it open to any other kind of organisation."""

from __future__ import annotations

import json
import re
from typing import Any

import jwt
import pytest

from app.access.identity import hash_secret
from tests.helpers.problems import assert_problem

PROBLEM = "application/problem+json"
# DESIGN section 5, "Scopes": what a client of each kind holds when nothing narrows it.
DEFAULT_SCOPES = {
    # A prison also reads, subscribes to and acknowledges the alerts about its notices.
    "prison": {
        "release-notices:write",
        "consents:write",
        "reports:read",
        "messages:read",
        "subscriptions:write",
        "acknowledgements:write",
    },
    "probation_provider": {
        "messages:read",
        "subscriptions:write",
        "acknowledgements:write",
        "updates:write",
    },
    "substance_misuse_service": {
        "consents:write",
        "messages:read",
        "subscriptions:write",
        "acknowledgements:write",
        "updates:write",
    },
    "auditor": {"audit:read", "reports:read"},
    "operator": {"admin", "metrics:read", "reports:read"},
}
CLIENT_FIELDS = {
    "client_id",
    "scopes",
    "authentication",
    "created_at",
    "disabled_at",
    "previous_secret_valid_until",
}
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


async def client_id_of(world, code: str) -> str:
    token = await world.token(code)
    return jwt.decode(token, options={"verify_signature": False})["client_id"]


async def create_org(world, kind: str = "prison", code: str = "WYI", name: str = "HMP Wealstun"):
    return await world.api.post(
        "/v1/organisations",
        json={"kind": kind, "code": code, "name": name},
        headers=await world.headers("OPS"),
    )


async def entries(world, action: str) -> list[dict[str, Any]]:
    response = await world.api.get(
        "/v1/audit/entries", params={"action": action}, headers=await world.headers("AUDIT")
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- organisations ---------------------------------------------------------------------------


async def test_an_operator_registers_an_organisation_and_reads_it_back(world, api) -> None:
    created = await create_org(world)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/organisations/WYI"
    body = created.json()
    assert body["code"] == "WYI" and body["kind"] == "prison" and body["name"] == "HMP Wealstun"
    assert body["disabled_at"] is None
    got = await api.get(created.headers["location"], headers=await world.headers("OPS"))
    assert got.status_code == 200
    assert got.json() == body
    rows = await world.sql("SELECT kind, name FROM organisation WHERE code = 'WYI'")
    assert [tuple(r) for r in rows] == [("prison", "HMP Wealstun")]


async def test_the_list_pages_through_every_organisation_once(world, api) -> None:
    assert (await create_org(world)).status_code == 201
    headers = await world.headers("OPS")
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while len(pages) < 10:  # bounded: a cursor that never ends must fail, not hang
        response = await api.get("/v1/organisations", params=params, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        assert len(pages[-1]["items"]) <= 3
        seen += [o["code"] for o in pages[-1]["items"]]
        if pages[-1]["next_cursor"] is None:
            break
        params = {"limit": 3, "cursor": pages[-1]["next_cursor"]}
    expected = {"MDI", "LPI", "N07", "N99", "SMS-LEEDS", "AUDIT", "OPS", "WYI"}
    assert sorted(seen) == sorted(expected)  # each exactly once
    assert [len(p["items"]) for p in pages] == [3, 3, 2]
    assert seen[-1] == "WYI"  # oldest first
    everything = await api.get("/v1/organisations", headers=headers)
    assert [o["code"] for o in everything.json()["items"]] == seen


async def test_a_code_taken_is_a_409_problem_and_changes_nothing(world) -> None:
    await world.token("OPS")
    before = await world.counts()
    response = await create_org(world, code="MDI", name="Another Moorland")
    assert_problem(response, 409)
    assert await world.counts() == before
    rows = await world.sql("SELECT name FROM organisation WHERE code = 'MDI'")
    assert [r[0] for r in rows] == ["MDI test"]


@pytest.mark.parametrize(
    ("body", "pointers"),
    [
        ({"kind": "pharmacy", "code": "PH1", "name": "x"}, {"/kind"}),
        ({"kind": "prison", "code": "lower", "name": "x"}, {"/code"}),
        ({"kind": "prison", "code": "X", "name": "x"}, {"/code"}),
        ({"kind": "prison", "code": "PH1", "name": ""}, {"/name"}),
        ({"kind": "pharmacy", "code": "-AB", "name": ""}, {"/kind", "/code", "/name"}),
        ({"kind": "prison", "code": "PH1"}, {"/name"}),
        ({"kind": "prison", "code": "PH1", "name": "x", "extra": 1}, {"/extra"}),
        # A name is one line without control characters, on both databases alike: PostgreSQL
        # cannot store NUL (a 500 once), SQLite stored it.
        ({"kind": "prison", "code": "PH1", "name": "HMP\x00Wealstun"}, {"/name"}),
        ({"kind": "prison", "code": "PH1", "name": "HMP\nWealstun"}, {"/name"}),
        ({"kind": "prison", "code": "PH1", "name": "HMP\x85Wealstun"}, {"/name"}),
        ({"kind": "prison", "code": "PH1", "name": "   "}, {"/name"}),
    ],
)
async def test_a_bad_organisation_is_a_422_problem_naming_the_fields(
    world, api, body, pointers
) -> None:
    headers = await world.headers("OPS")
    before = await world.counts()
    response = await api.post("/v1/organisations", json=body, headers=headers)
    problem = assert_problem(response, 422)
    assert {e["pointer"] for e in problem["errors"]} == pointers
    assert await world.counts() == before


async def test_an_unknown_code_is_a_404_problem(world, api) -> None:
    headers = await world.headers("OPS")
    assert_problem(await api.get("/v1/organisations/NOPE", headers=headers), 404)
    assert_problem(await api.get("/v1/organisations/NOPE/clients", headers=headers), 404)


# --- clients ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "code"), [("prison", "MDI"), ("probation_provider", "N07")])
async def test_a_new_client_gets_a_secret_once_and_its_kinds_scopes(world, api, kind, code):
    response = await api.post(
        f"/v1/organisations/{code}/clients", json={}, headers=await world.headers("OPS")
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body["scopes"].split()) == DEFAULT_SCOPES[kind]
    assert body["authentication"] == "client_secret_basic"
    assert body["client_secret"]
    token = await api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["client_id"], body["client_secret"]),
    )
    assert token.status_code == 200, token.text
    claims = jwt.decode(token.json()["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == body["client_id"]
    assert set(claims["scope"].split()) == DEFAULT_SCOPES[kind]
    wrong = await api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(body["client_id"], body["client_secret"] + "x"),
    )
    assert wrong.status_code == 401


async def test_a_client_can_be_narrowed_but_not_widened(world, api) -> None:
    headers = await world.headers("OPS")
    narrowed = await api.post(
        "/v1/organisations/MDI/clients", json={"scopes": "release-notices:write"}, headers=headers
    )
    assert narrowed.status_code == 201, narrowed.text
    assert narrowed.json()["scopes"] == "release-notices:write"
    before = await world.counts()
    for scopes in ("audit:read", "release-notices:write admin", "", " ", "admin\x00", 7):
        widened = await api.post(
            "/v1/organisations/MDI/clients", json={"scopes": scopes}, headers=headers
        )
        assert [e["pointer"] for e in assert_problem(widened, 422)["errors"]] == ["/scopes"]
    missing = await api.post("/v1/organisations/NOPE/clients", json={}, headers=headers)
    assert_problem(missing, 404)
    assert await world.counts() == before


async def test_the_client_list_shows_no_secret_nor_its_hash(world, api) -> None:
    headers = await world.headers("OPS")
    created = (await api.post("/v1/organisations/N07/clients", json={}, headers=headers)).json()
    listed = await api.get("/v1/organisations/N07/clients", headers=headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert created["client_id"] in [c["client_id"] for c in items]
    text = listed.text
    stored = {r[0] for r in await world.sql("SELECT secret_sha256 FROM api_client")}
    assert created["client_secret"] not in text
    assert all(set(c) == CLIENT_FIELDS for c in items)
    assert not set(HEX64.findall(text)) & stored
    assert hash_secret(created["client_secret"]) in stored  # the control: the hash is stored


# --- the log of administrative changes ------------------------------------------------------


async def test_every_change_is_logged_with_the_operator_as_actor_and_no_secret(world, api):
    headers = await world.headers("OPS")
    operator = await client_id_of(world, "OPS")
    registered = await create_org(world)
    assert registered.status_code == 201
    created = await api.post("/v1/organisations/WYI/clients", json={}, headers=headers)
    client_id, secret = created.json()["client_id"], created.json()["client_secret"]
    rotated = await api.post(
        f"/v1/organisations/WYI/clients/{client_id}/secret",
        json={"overlap_seconds": 3600},
        headers=headers,
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret and rotated.json()["previous_secret_valid_until"]
    disabled = await api.post(f"/v1/organisations/WYI/clients/{client_id}/disable", headers=headers)
    assert disabled.status_code == 200 and disabled.json()["disabled_at"]
    gone = await api.post("/v1/organisations/WYI/disable", headers=headers)
    assert gone.status_code == 200 and gone.json()["disabled_at"]

    wyi = registered.json()["id"]
    for action, extra in [
        ("organisation.created", {"kind": "prison"}),
        ("client.created", {"client_id": client_id, "method": "client_secret_basic"}),
        ("client.secret_rotated", {"client_id": client_id, "overlap_seconds": 3600}),
        ("client.disabled", {"client_id": client_id}),
        ("organisation.disabled", {}),
    ]:
        (entry,) = [e for e in await entries(world, action) if e["details"].get("code") == "WYI"]
        assert entry["actor_client_id"] == operator, action
        assert entry["actor_organisation_id"] == str(world.ids["OPS"]), action
        assert entry["subject_organisation_id"] == wyi, action
        assert entry["details"] == {"code": "WYI", "via": "api", **extra}, action

    everything = await api.get(
        "/v1/audit/entries", params={"limit": 200}, headers=await world.headers("AUDIT")
    )
    text = everything.text
    for value in (secret, new_secret, hash_secret(secret), hash_secret(new_secret)):
        assert value not in text


async def test_disabling_stops_tokens_and_an_operator_cannot_disable_itself(world, api):
    headers = await world.headers("OPS")
    token = await world.headers("N07")
    assert (await api.get("/v1/messages", headers=token)).status_code == 200
    assert (await api.post("/v1/organisations/N07/disable", headers=headers)).status_code == 200
    assert_problem(await api.get("/v1/messages", headers=token), 401)
    assert_problem(await api.post("/v1/organisations/OPS/disable", headers=headers), 409)
    assert (await api.get("/v1/organisations", headers=headers)).status_code == 200


# --- nobody else -----------------------------------------------------------------------------

OPERATIONS = [
    ("POST", "/v1/organisations", {"kind": "prison", "code": "WYI", "name": "HMP Wealstun"}),
    ("GET", "/v1/organisations", None),
    ("GET", "/v1/organisations/MDI", None),
    ("POST", "/v1/organisations/MDI/clients", {}),
    ("GET", "/v1/organisations/MDI/clients", None),
    ("POST", "/v1/organisations/N99/disable", None),
]


@pytest.mark.parametrize("code", ["MDI", "N07", "AUDIT"])
@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
async def test_only_an_operator_may_administer(world, api, code, method, path, body) -> None:
    headers = await world.headers(code)
    before = await world.counts()
    response = await api.request(method, path, json=body, headers=headers)
    problem = assert_problem(response, 403)
    assert "items" not in problem and "client_secret" not in json.dumps(problem)
    assert await world.counts() == before
    disabled = await world.sql("SELECT code FROM organisation WHERE disabled_at IS NOT NULL")
    assert disabled == []


@pytest.mark.parametrize(
    ("method", "path", "pointer"),
    [
        ("GET", "/v1/organisations/%00", "/code"),
        ("GET", "/v1/organisations/MD%0AI", "/code"),
        ("GET", "/v1/organisations/%00/clients", "/code"),
        ("POST", "/v1/organisations/%7F/disable", "/code"),
        ("POST", "/v1/organisations/MDI/clients/cli%00x/disable", "/client_id"),
        ("POST", "/v1/organisations/MDI/clients/cli%0Ax/secret", "/client_id"),
    ],
)
async def test_a_control_character_in_a_path_is_a_422_naming_it(world, api, method, path, pointer):
    """Once a 500 on PostgreSQL (NUL cannot be a query parameter there) and a 404 on SQLite."""
    headers = await world.headers("OPS")
    before = await world.counts()
    response = await api.request(method, path, json={}, headers=headers)
    assert [e["pointer"] for e in assert_problem(response, 422)["errors"]] == [pointer]
    assert await world.counts() == before


@pytest.mark.parametrize("overlap", [False, True, 60.0, "60"])
async def test_a_rotation_takes_overlap_seconds_only_as_a_whole_number(world, api, overlap):
    """`false` was once read as 0: the old secret stopped at once, cutting the client off."""
    client_id, secret = await world.credentials("MDI")
    headers = await world.headers("OPS")
    before = await world.counts()
    response = await api.post(
        f"/v1/organisations/MDI/clients/{client_id}/secret",
        json={"overlap_seconds": overlap},
        headers=headers,
    )
    assert [e["pointer"] for e in assert_problem(response, 422)["errors"]] == ["/overlap_seconds"]
    assert await world.counts() == before
    token = await api.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert token.status_code == 200, token.text  # nothing was rotated
