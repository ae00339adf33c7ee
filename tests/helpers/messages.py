"""What a recipient reads: its inbox, a message verified with PyJWT against the published JWKS
only, and a webhook subscription (its secret)."""

from __future__ import annotations

from typing import Any

import jwt

ISSUER = "http://exchange.test"  # the issuer of the test settings (conftest.py)


async def inbox(world, code: str) -> list[dict[str, Any]]:
    response = await world.api.get("/v1/messages", headers=await world.headers(code))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def verified(api, jws: str, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a message, checked with PyJWT against the published JWKS only."""
    header = jwt.get_unverified_header(jws)
    keys = (await api.get("/.well-known/jwks.json")).json()["keys"]
    (key,) = [jwt.PyJWK(k) for k in keys if k["kid"] == header["kid"]]
    claims = jwt.decode(jws, key, algorithms=["ES256"], audience=audience, issuer=ISSUER)
    return header, claims


async def subscribe(world, code: str, url: str) -> str:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text
    return response.json()["secret"]
