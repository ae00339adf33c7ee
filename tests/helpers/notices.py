"""Release notices changed for a test: members set or dropped by JSON pointer (DROP), request
bodies made at request time, and a notice amended, cancelled and tracked through the API."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx

NOTICES = "/v1/release-notices"


CONCERNS = "Amended: contact with the children only under supervision."


DROP = object()


PLAN = "/release_plan/"


NO_SMS = {PLAN + "substance_misuse_service": DROP, PLAN + "treatment_appointment": DROP}


def edited(example: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of the example with the member at each pointer set, or removed with DROP."""
    body = copy.deepcopy(example)
    for pointer, value in changes.items():
        *parents, last = pointer.strip("/").split("/")
        target: Any = body
        for part in parents:
            target = target[int(part) if isinstance(target, list) else part]
        if value is DROP:
            del target[last]
        else:
            target[last] = value
    return body


async def post(world, path: str, body: Any, code: str = "MDI") -> httpx.Response:
    return await world.api.post(path, json=body, headers=await world.headers(code))


async def amend(world, notice_id: str, body: Any, code: str = "MDI") -> httpx.Response:
    return await post(world, f"{NOTICES}/{notice_id}/amendments", body, code)


async def cancel(world, notice_id: str, reason: str = "entered_in_error", code: str = "MDI"):
    return await post(world, f"{NOTICES}/{notice_id}/cancellation", {"reason": reason}, code)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"{NOTICES}/{response.json()['id']}"
    return response.json()


def sent(answer: dict[str, Any], kind: str = "disclosure", member: str = "message_id") -> dict:
    """Per recipient, the message of this kind that an answer (or a status) names, or a member."""
    return {r["organisation_code"]: r[member] for r in answer["recipients"] if r["kind"] == kind}


async def tracked(world, notice_id: str) -> dict[str, Any]:
    response = await world.api.get(f"{NOTICES}/{notice_id}", headers=await world.headers("MDI"))
    assert response.status_code == 200, response.text
    return response.json()


PROBLEM, JSON = "application/problem+json", "application/json"


Maker = Callable[[dict[str, Any]], dict[str, Any]]


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


def at(pointer: str, value: Any) -> Maker:
    return edits((pointer, value))


def edits(*pairs: tuple[str, Any]) -> Maker:
    """Set each pointer; a value given as a function is worked out when the request is made."""

    def make(example: dict[str, Any]) -> dict[str, Any]:
        for pointer, value in pairs:
            example = changed(example, pointer, value() if callable(value) else value)
        return example

    return json_body(make)
