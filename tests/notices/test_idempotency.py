"""Idempotency-Key on the POSTs that change a notice, on both databases.

A repeat of a request with its key gets the first answer again (with `idempotent-replayed`) and
writes nothing; the key with any other request is a 409; keys are the posting organisation's
own; a refused request does not use its key up; racing repeats make one notice.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.helpers.notices import DROP, changed
from tests.helpers.problems import assert_problem

KEY = "b7e1f3c2-4a5d-4e8f-9c0b-1d2e3f405162"
NOTICES = "/v1/release-notices"
REPLAYED = "idempotent-replayed"
RACERS = 5


async def post(
    world, path: str, body: Any, key: str | bytes | None, code: str = "MDI"
) -> httpx.Response:
    headers: dict[str, Any] = await world.headers(code)
    if key is not None:
        headers["idempotency-key"] = key
    return await world.api.post(path, json=body, headers=headers)


def accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"{NOTICES}/{body['id']}"
    return body


def assert_replay_of(first: httpx.Response, again: httpx.Response) -> None:
    assert again.status_code == first.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers.get(REPLAYED) == "true"
    assert REPLAYED not in first.headers


async def messages(world, kind: str) -> list[tuple[str, str]]:
    """(recipient code, notice id) of each message of a kind."""
    rows = await world.sql(
        "SELECT o.code, m.notice_id FROM message m"
        " JOIN organisation o ON o.id = m.recipient_organisation_id WHERE m.kind = :kind",
        kind=kind,
    )
    return sorted((code, str(uuid.UUID(str(notice_id)))) for code, notice_id in rows)


def reordered(value: Any) -> Any:
    """The same JSON with every object's members in reverse order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


# --- a repeat is answered as the first time ---------------------------------------------------


async def test_a_repeat_gets_the_first_answer_and_writes_nothing(world, example):
    first = await post(world, NOTICES, example, KEY)
    accepted(first)
    after_first = await world.counts()
    assert after_first["release_notice"] == 1 and after_first["idempotency_key"] == 1

    for _ in range(2):
        assert_replay_of(first, await post(world, NOTICES, copy.deepcopy(example), KEY))
    assert await world.counts() == after_first


async def test_the_same_json_in_another_order_and_spacing_is_the_same_request(world, api, example):
    first = await post(world, NOTICES, example, KEY)
    accepted(first)
    before = await world.counts()

    content = json.dumps(reordered(example), indent=4, separators=(" ,", " :  ")).encode()
    headers = {**await world.headers("MDI"), "idempotency-key": KEY}
    headers["content-type"] = "application/json"
    again = await api.post(NOTICES, content=content, headers=headers)

    assert_replay_of(first, again)
    assert await world.counts() == before


async def test_the_key_with_another_request_is_a_conflict_that_writes_nothing(world, example):
    first = await post(world, NOTICES, example, KEY)
    notice_id = accepted(first)["id"]
    before = await world.counts()
    others = [
        (NOTICES, changed(example, "/person/given_name", "Danny")),
        (NOTICES, changed(example, "/other_substance_use", DROP)),
        (f"{NOTICES}/{notice_id}/amendments", example),
        (f"{NOTICES}/{notice_id}/cancellation", {"reason": "entered_in_error"}),
    ]
    for path, body in others:
        response = await post(world, path, body, KEY)
        problem = assert_problem(response, 409)
        assert REPLAYED not in response.headers and "id" not in problem, path
    assert await world.counts() == before
    # The conflicts spoiled nothing: the first request still replays, and the notice is open.
    assert_replay_of(first, await post(world, NOTICES, example, KEY))
    status = await world.api.get(f"{NOTICES}/{notice_id}", headers=await world.headers("MDI"))
    assert status.json()["status"] == "accepted"


# --- whose key it is --------------------------------------------------------------------------


async def test_keys_belong_to_the_posting_organisation(world, example):
    client_id, secret = await world.credentials("MDI")  # a second client of MDI
    token = await world.api.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    second_client = {"authorization": f"Bearer {token.json()['access_token']}"}
    mdi = await post(world, NOTICES, example, KEY)
    mdi_id = accepted(mdi)["id"]

    # MDI's very request with MDI's key, sent by LPI, is judged as LPI's: never MDI's answer.
    await world.headers("LPI")
    before = await world.counts()
    stolen = await post(world, NOTICES, example, KEY, code="LPI")
    assert [e["pointer"] for e in assert_problem(stolen, 422)["errors"]] == ["/release/prison_code"]
    assert REPLAYED not in stolen.headers and mdi_id not in stolen.text
    assert await world.counts() == before
    # LPI's own request with the key is new, and from then on the key is LPI's too.
    lpi_notice = changed(example, "/release/prison_code", "LPI")
    lpi = await post(world, NOTICES, lpi_notice, KEY, code="LPI")
    assert accepted(lpi)["id"] != mdi_id
    assert REPLAYED not in lpi.headers
    assert_problem(await post(world, NOTICES, example, KEY, code="LPI"), 409)
    before = await world.counts()
    assert before["release_notice"] == 2 and before["idempotency_key"] == 2

    # Each organisation's key replays its own answer, whichever of its clients asks.
    assert_replay_of(lpi, await post(world, NOTICES, lpi_notice, KEY, code="LPI"))
    again = await world.api.post(
        NOTICES, json=example, headers={**second_client, "idempotency-key": KEY}
    )
    assert_replay_of(mdi, again)
    assert await world.counts() == before


async def test_keys_are_compared_exactly(world, example):
    """Keys differing only in case are two keys (SQLite and PostgreSQL must agree)."""
    lower = accepted(await post(world, NOTICES, example, "order-7f-a"))
    upper = accepted(await post(world, NOTICES, example, "ORDER-7F-A"))
    assert lower["id"] != upper["id"]
    assert (await world.counts())["release_notice"] == 2


# --- a refused request keeps its key free -----------------------------------------------------


async def test_a_refused_request_does_not_use_up_its_key(world, example):
    await world.headers("MDI")
    before = await world.counts()
    unregistered = changed(example, "/release_plan/probation_provider", "N42")
    refused = await post(world, NOTICES, unregistered, KEY)
    body = assert_problem(refused, 422)
    assert [e["pointer"] for e in body["errors"]] == ["/release_plan/probation_provider"]
    assert await world.counts() == before

    # The same bad request again is judged again, not replayed as a 422.
    assert REPLAYED not in (await post(world, NOTICES, unregistered, KEY)).headers
    good = await post(world, NOTICES, example, KEY)
    accepted(good)
    assert REPLAYED not in good.headers
    assert (await world.counts())["release_notice"] == 1
    # Now the key is taken: the bad request is another request.
    assert_problem(await post(world, NOTICES, unregistered, KEY), 409)


# --- amendments and cancellations -------------------------------------------------------------


async def test_a_repeated_amendment_makes_one_new_version(world, example):
    original = accepted(await post(world, NOTICES, example, None))
    amended_body = changed(example, "/release/accommodation/status", "settled")
    path = f"{NOTICES}/{original['id']}/amendments"
    first = await post(world, path, amended_body, KEY)
    amendment = accepted(first)
    assert amendment["version"] == 2 and amendment["series_id"] == original["id"]
    before = await world.counts()

    assert_replay_of(first, await post(world, path, amended_body, KEY))
    assert await world.counts() == before
    # Without the key the amendment is judged again: version 1 is no longer the latest.
    assert_problem(await post(world, path, amended_body, None), 409)


async def test_a_repeated_cancellation_sends_one_cancellation(world, example):
    notice = accepted(await post(world, NOTICES, example, None))
    path = f"{NOTICES}/{notice['id']}/cancellation"
    first = await post(world, path, {"reason": "entered_in_error"}, KEY)
    assert accepted(first)["status"] == "cancelled"
    sent = [("N07", notice["id"]), ("SMS-LEEDS", notice["id"])]
    assert await messages(world, "cancellation") == sent
    before = await world.counts()

    again = await post(world, path, {"reason": "entered_in_error"}, KEY)
    assert_replay_of(first, again)
    assert await messages(world, "cancellation") == sent
    assert await world.counts() == before
    # With another reason it is another request.
    assert_problem(await post(world, path, {"reason": "other"}, KEY), 409)
    assert await world.counts() == before


# --- racing repeats ---------------------------------------------------------------------------


async def test_racing_repeats_make_one_notice_and_one_message_per_recipient(world, example):
    await world.headers("MDI")  # one client and token, made before the rush
    responses = await asyncio.gather(*(post(world, NOTICES, example, KEY) for _ in range(RACERS)))

    assert [r.status_code for r in responses] == [202] * RACERS, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    assert sorted(r.headers.get(REPLAYED, "first") for r in responses) == ["first"] + ["true"] * (
        RACERS - 1
    )
    counts = await world.counts()
    assert counts["release_notice"] == 1 and counts["idempotency_key"] == 1
    notice_id = responses[0].json()["id"]
    assert await messages(world, "disclosure") == [("N07", notice_id), ("SMS-LEEDS", notice_id)]


async def test_racing_repeated_cancellations_send_one_cancellation_each(world, example):
    notice = accepted(await post(world, NOTICES, example, None))
    path, reason = f"{NOTICES}/{notice['id']}/cancellation", {"reason": "release_cancelled"}
    responses = await asyncio.gather(*(post(world, path, reason, KEY) for _ in range(RACERS)))

    assert [r.status_code for r in responses] == [202] * RACERS, [r.text for r in responses]
    assert all(r.json() == responses[0].json() for r in responses)
    assert sum(REPLAYED in r.headers for r in responses) == RACERS - 1
    sent = [("N07", notice["id"]), ("SMS-LEEDS", notice["id"])]
    assert await messages(world, "cancellation") == sent


async def test_racing_different_requests_with_one_key_let_one_through(world, example):
    await world.headers("MDI")
    bodies = [changed(example, "/person/given_name", f"Daniel{n}") for n in range(RACERS)]
    responses = await asyncio.gather(*(post(world, NOTICES, b, KEY) for b in bodies))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [409] * (RACERS - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    counts = await world.counts()
    assert counts["release_notice"] == 1 and counts["idempotency_key"] == 1
    assert len(await messages(world, "disclosure")) == 2


# --- what a key may be ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("two words", id="space"),
        pytest.param("tab\there", id="tab"),
        pytest.param("delete\x7f", id="DEL"),
        pytest.param("k" * 256, id="256 characters"),
        pytest.param("clé".encode("latin-1"), id="not ASCII"),
    ],
)
async def test_a_malformed_key_is_refused_and_writes_nothing(world, example, key):
    await world.headers("MDI")
    before = await world.counts()
    response = await post(world, NOTICES, example, key)
    body = assert_problem(response, 422)
    assert [e["pointer"] for e in body["errors"]] == ["/idempotency-key"]
    assert await world.counts() == before


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 255, id="255 characters"),
        pytest.param("!", id="lowest printable"),
        pytest.param("~" * 2, id="highest printable"),
        pytest.param("a/b?c=d&e#f%20\"'\\", id="punctuation"),
    ],
)
async def test_a_key_at_the_edges_is_accepted_and_replays(world, example, key):
    first = await post(world, NOTICES, example, key)
    accepted(first)
    before = await world.counts()
    assert_replay_of(first, await post(world, NOTICES, example, key))
    assert await world.counts() == before
    assert before["release_notice"] == 1 and before["idempotency_key"] == 1
