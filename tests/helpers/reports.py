"""Releases made for the reports' tests through the API: posted, amended, acknowledged by the
substance misuse service; and the reports asked for."""

from __future__ import annotations

import copy
import itertools
from datetime import date
from typing import Any

import httpx

from tests.helpers.acknowledgements import acknowledge, dated, released
from tests.helpers.consents import recipients

CONTINUITY, TIMELINESS = "/v1/reports/continuity-of-care", "/v1/reports/timeliness"


_people = itertools.count(1)


def notice(example: dict[str, Any], on: date, code: str = "MDI") -> dict[str, Any]:
    """A notice about a release on that day from `code`, about a person of its own (a consent
    refused in one notice then holds for none of the others)."""
    body = released(example, on)
    body["release"]["prison_code"] = code
    body["person"]["noms_number"] = f"A{next(_people) % 10000:04d}BC"
    return body


async def release(world, example: dict[str, Any], on: date, code: str = "MDI") -> dict[str, Any]:
    """A notice about a release on that day, posted by `code`: its answer."""
    response = await world.post_notice(notice(example, on, code), code)
    assert response.status_code == 202, response.text
    return response.json()


def without_consent(example: dict[str, Any]) -> dict[str, Any]:
    """The example with the person's consent to the service refused: it is sent nothing."""
    body = copy.deepcopy(example)
    for record in body["consent"]:
        if record["scope"] == "substance_misuse_service":
            record["decision"] = "refused"
    return body


async def service_says(world, accepted: dict[str, Any], status: str, day: date | None = None):
    """The substance misuse service acknowledges the notice's message with `status` (dated)."""
    message_id = recipients(accepted)["SMS-LEEDS"]
    body = {"status": status} if day is None else dated(status, day)
    response = await acknowledge(world, message_id, body, "SMS-LEEDS")
    assert response.status_code == 201, response.text


async def report(world, code: str, path: str = CONTINUITY, **query: Any) -> httpx.Response:
    return await world.api.get(path, params=query, headers=await world.headers(code))
