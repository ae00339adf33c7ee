"""Clients and their credentials, as the token endpoint's tests make them: keys (cryptography),
signed assertions (PyJWT), registration by the operator, and the token endpoint's refusals."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm

ISSUER = "http://exchange.test"


TOKEN_URL = ISSUER + "/oauth/token"


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


PROBLEM = "application/problem+json"


ALG = {"ec": "ES256", "rsa": "RS256"}


@cache
def private_key(name: str) -> Any:
    """Keys by name, made once per run: an EC P-256 key can be registered by many tests."""
    if name == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if name.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(name[3:] or 2048))
    return ec.generate_private_key(ec.SECP256R1())  # "ec", "ec-other"


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class KeyClient:
    client_id: str
    key: Any
    alg: str = "ES256"

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_URL,
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def assertion(self, claims: dict[str, Any] | None = None, *, key: Any = None, **header) -> str:
        return jwt.encode(
            claims or self.claims(), key or self.key, self.alg, headers=header or None
        )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    assert "access_token" not in body
    return body


async def metrics(world) -> str:
    """The metrics, as an operator reads them."""
    response = await world.api.get("/metrics", headers=await world.headers("OPS"))
    assert response.status_code == 200, response.text
    return response.text


async def failures(world, reason: str) -> float:
    text = await metrics(world)
    found = re.search(rf'exchange_client_auth_failures_total{{reason="{reason}"}} ([0-9.]+)', text)
    return float(found.group(1)) if found else 0.0


async def assert_refused(world, request: Awaitable[httpx.Response], reason: str) -> None:
    """401 invalid_client; why is counted in metrics and never told to the caller."""
    before = await failures(world, reason)
    response = await request
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic")
    assert body["error"] == "invalid_client"
    assert "reason" not in body
    assert await failures(world, reason) == before + 1


async def token_request(api, assertion=None, *, assertion_type=JWT_BEARER, auth=None):
    data = {"grant_type": "client_credentials"}
    if assertion is not None:
        data |= {"client_assertion_type": assertion_type, "client_assertion": assertion}
    return await api.post("/oauth/token", data=data, auth=auth)


async def bearer(api, assertion=None, auth=None) -> str:
    response = await token_request(api, assertion, auth=auth)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def messages(api, token: str) -> httpx.Response:
    return await api.get("/v1/messages", headers={"authorization": f"Bearer {token}"})


async def operator(world, api, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return await api.post(
        f"/v1/organisations/{path}", json=body, headers=await world.headers("OPS")
    )


async def register(world, api, key_name: str = "ec", *, as_jwk: bool = False) -> KeyClient:
    key = private_key(key_name)
    document = ECAlgorithm.to_jwk(key.public_key()) if as_jwk else public_pem(key)
    response = await operator(world, api, "N07/clients", {"public_key": document})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_secret"] is None and body["authentication"] == "private_key_jwt"
    return KeyClient(body["client_id"], key, ALG[key_name])
