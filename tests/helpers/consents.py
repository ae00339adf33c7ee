"""A person's consents through the API, as the consent and withdrawal tests use them: record,
list, withdraw, the notices that carry them, and what the log and deliveries show after."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import httpx

from app.notices import examples

NOMS = "A1234BC"  # the example notice's person


OTHER = "B9876CD"


SMS, CLINICAL = "substance_misuse_service", "probation_clinical_details"


CLINICAL_NOTES = "/nps_use/treatment_in_custody/clinical_notes"


OUT_MEMBERS = {"id", "scope", "decision", "recorded_at", "recorded_by", "expires_at", "source"}


OUT_MEMBERS |= {"created_at", "withdrawn_at", "voided_at"}


def as_json(value: Any) -> Any:
    """A JSON column as read by raw SQL: decoded on PostgreSQL, text on SQLite."""
    return json.loads(value) if isinstance(value, str) else value


def hexid(value: Any) -> str:
    """A uuid as raw SQL reads it on either database, or as the API writes it: 32 hex digits."""
    return str(value).replace("-", "")


def people(noms: str = NOMS) -> str:
    return f"/v1/people/{noms}/consents"


def instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def consent(scope: str, decision: str, **extra: Any) -> dict[str, Any]:
    return {
        "scope": scope,
        "decision": decision,
        "recorded_by": "Healthcare, HMP Moorland",
        **extra,
    }


async def record(world, body: dict[str, Any], code: str = "MDI", noms: str = NOMS) -> dict:
    response = await world.api.post(people(noms), json=body, headers=await world.headers(code))
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"{people(noms)}/{created['id']}"
    assert set(created) == OUT_MEMBERS
    fetched = await world.api.get(response.headers["location"], headers=await world.headers(code))
    assert (fetched.status_code, fetched.json()) == (200, created)
    # The same record is no one else's: under another NOMS number it does not exist.
    elsewhere = f"{people('Z9999ZZ')}/{created['id']}"
    assert (await world.api.get(elsewhere, headers=await world.headers(code))).status_code == 404
    return created


async def history(world, noms: str = NOMS, code: str = "MDI") -> dict[str, Any]:
    response = await world.api.get(people(noms), headers=await world.headers(code))
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()


async def withdraw(world, consent_id: str, code: str = "MDI", noms: str = NOMS) -> httpx.Response:
    path = f"{people(noms)}/{consent_id}/withdrawal"
    return await world.api.post(path, headers=await world.headers(code))


async def carried(world, scope: str) -> dict[str, Any]:
    """The person's one record of this scope (as carried by the example notice)."""
    [item] = [c for c in (await history(world))["items"] if c["scope"] == scope]
    return item


def recipients(accepted: dict[str, Any]) -> dict[str, str | None]:
    return {r["organisation_code"]: r["message_id"] for r in accepted["recipients"]}


async def post(world, body: dict[str, Any]) -> dict[str, Any]:
    response = await world.post_notice(body)
    assert response.status_code == 202, response.text
    return response.json()


async def introduce(world, noms: str = NOMS, code: str = "MDI") -> dict[str, Any]:
    """Post a notice about the person that carries no consent, so that the prison that posts it
    and the recipients it is decided for (N07, SMS-LEEDS) may read and record their consents."""
    body = examples.release_notice(datetime.now(UTC).date())
    body["person"]["noms_number"], body["consent"] = noms, []
    body["release"]["prison_code"] = code
    response = await world.post_notice(body, code)
    assert response.status_code == 202, response.text
    return response.json()


async def change(world, notice_id: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
    """Amend or cancel a notice as its prison: the answer."""
    response = await world.api.post(
        f"/v1/release-notices/{notice_id}/{what}", json=body, headers=await world.headers("MDI")
    )
    assert response.status_code == 202, response.text
    return response.json()


async def states(world) -> dict[tuple[str, str], list[str]]:
    """Per (recipient code, message id), its deliveries' states."""
    rows = await world.sql(
        "SELECT o.code, m.id, d.state FROM delivery d JOIN message m ON m.id = d.message_id"
        " JOIN organisation o ON o.id = m.recipient_organisation_id ORDER BY d.state"
    )
    found: dict[tuple[str, str], list[str]] = {}
    for code, message_id, state in rows:
        found.setdefault((code, hexid(message_id)), []).append(state)
    return found


async def withdrawn(world, consent_id: str, noms: str = NOMS) -> dict[str, Any]:
    before = datetime.now(UTC)
    response = await withdraw(world, consent_id, noms=noms)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["consent"]["id"] == consent_id
    assert before <= instant(answer["consent"]["withdrawn_at"]) <= datetime.now(UTC)
    return answer


async def log(world, action: str) -> list[tuple[str | None, dict[str, Any]]]:
    rows = await world.sql(
        "SELECT message_id, details FROM audit_entry WHERE action = :action ORDER BY id",
        action=action,
    )
    return [(hexid(m) if m else None, as_json(d)) for m, d in rows]


def without_sms(example):
    body = copy.deepcopy(example)
    body["consent"] = [c for c in example["consent"] if c["scope"] != SMS]
    return body
