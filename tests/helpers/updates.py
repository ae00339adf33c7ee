"""Care updates through the API: a release that has happened, each recipient's disclosure of it,
an update posted about it, and what the other recipient's inbox holds, verified with jwcrypto
against the published JWKS only."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx
from jwcrypto import jwk, jws

from tests.helpers.acknowledgements import released

ISSUER = "http://exchange.test"
NOTE = "Reports daily Spice use since release; wants a reduction plan."
SERVICE, PROBATION = "SMS-LEEDS", "N07"


def updates(message_id: str) -> str:
    return f"/v1/messages/{message_id}/updates"


def from_service(on: date, **more: Any) -> dict[str, Any]:
    """A service's update: an attended appointment on `on`, the safeguarding answered, and
    detail beyond engagement (assessment, a clinical note)."""
    return {
        "engagement": [{"event": "assessed", "date": on.isoformat()}],
        "assessment": {"nps_use_identified": True, "nps_categories": ["synthetic_cannabinoid"]},
        "safeguarding": {"children_contact": "yes", "vulnerable_adults_contact": "no"},
        "clinical_note": NOTE,
        **more,
    }


async def release(world, example: dict[str, Any], today: date, days_ago: int = 10) -> dict:
    """A release `days_ago` days past, posted by MDI: the 202 answer, with per recipient the
    disclosure message id under `sent`."""
    response = await world.post_notice(released(example, today - timedelta(days=days_ago)))
    assert response.status_code == 202, response.text
    answer = response.json()
    answer["sent"] = {r["organisation_code"]: r["message_id"] for r in answer["recipients"]}
    return answer


async def share(world, message_id: str, body: Any, code: str = SERVICE, **headers: str):
    return await world.api.post(
        updates(message_id), json=body, headers={**await world.headers(code), **headers}
    )


async def shared(world, message_id: str, body: Any, code: str = SERVICE) -> dict[str, Any]:
    response = await share(world, message_id, body, code)
    assert response.status_code == 202, response.text
    return response.json()


async def received(world, code: str, kind: str = "care_update") -> list[dict[str, Any]]:
    """The recipient's inbox items of that kind, oldest first."""
    response = await world.api.get("/v1/messages", headers=await world.headers(code))
    assert response.status_code == 200, response.text
    return [m for m in response.json()["items"] if m["kind"] == kind]


async def verified(api: httpx.AsyncClient, token: str, audience: str) -> tuple[dict, dict]:
    """Header and claims of a compact JWS, checked with jwcrypto against the served JWKS."""
    keys = jwk.JWKSet.from_json((await api.get("/.well-known/jwks.json")).text)
    signed = jws.JWS()
    signed.deserialize(token)
    header = signed.jose_header
    signed.verify(keys.get_key(header["kid"]), alg="ES256")
    claims = json.loads(signed.payload)
    assert claims["aud"] == audience and claims["iss"] == ISSUER
    return header, claims


def withheld(claims: dict[str, Any]) -> dict[str, str]:
    return {w["path"]: w["reason"] for w in claims["manifest"]}
