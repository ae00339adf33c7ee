"""Acknowledging a message through the API, and reading back what the prison sees of it."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import httpx

STATUSES = ["received", "accepted", "appointment_booked", "attended", "did_not_attend", "declined"]
NOTE = "Seen by Dr Okafor at the Leeds hub; Daniel asked for evening appointments."
OUT_MEMBERS = {"id", "message_id", "status", "appointment_date", "note", "recorded_at", "late"}


def released(example: dict[str, Any], on: date) -> dict[str, Any]:
    """The example, about a release on that day (intake takes one up to 28 days past)."""
    body = copy.deepcopy(example)
    body["release"]["release_date"] = on.isoformat()
    return body


def dated(status: str, on: date, **more: Any) -> dict[str, Any]:
    """An acknowledgement's body with the appointment's day."""
    return {"status": status, "appointment_date": on.isoformat(), **more}


async def counts(world, *codes: str) -> dict[str, int]:
    """Rows per table, once these organisations hold tokens (a first token adds a client)."""
    for code in codes or ("N07", "N99", "SMS-LEEDS", "MDI", "LPI", "AUDIT"):
        await world.headers(code)
    return await world.counts()


def acks(message_id: str) -> str:
    return f"/v1/messages/{message_id}/acknowledgements"


async def acknowledge(
    world, message_id: str, body: Any, code: str = "N07", **headers: str
) -> httpx.Response:
    return await world.api.post(
        acks(message_id), json=body, headers={**await world.headers(code), **headers}
    )


def recorded(response: httpx.Response, message_id: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == OUT_MEMBERS and body["message_id"] == message_id
    assert response.headers["location"] == f"{acks(message_id)}/{body['id']}"
    return body


async def notice_status(world, notice_id: str, code: str = "MDI") -> dict[str, Any]:
    response = await world.api.get(
        f"/v1/release-notices/{notice_id}", headers=await world.headers(code)
    )
    assert response.status_code == 200, response.text
    return {r["organisation_code"]: r for r in response.json()["recipients"]}
