"""Client authentication at the token endpoint: private_key_jwt (RFC 7523) with EC and RSA keys,
the assertions it must refuse, key registration, secret rotation, disabling, and throttling.

Keys and assertions are made with cryptography and PyJWT, never with the exchange's own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from jwt.algorithms import ECAlgorithm
from sqlalchemy import update

from app.storage.models import ApiClient
from tests.helpers.tokens import (
    ISSUER,
    TOKEN_URL,
    KeyClient,
    assert_problem,
    assert_refused,
    bearer,
    messages,
    metrics,
    operator,
    private_key,
    public_pem,
    register,
    token_request,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(key: Any) -> str:
    """RFC 7638 of an EC key's public half: the kid a well-behaved client would give it."""
    members = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    required = {k: members[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def hs256(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT built by hand: PyJWT refuses PEM text as an HMAC key, an attacker would not."""
    signing_input = (
        b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode())
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


# --- private_key_jwt -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_name", "as_jwk"),
    [("ec", False), ("rsa", False), ("ec", True)],
    ids=["EC P-256 PEM", "RSA-2048 PEM", "EC P-256 JWK"],
)
async def test_a_key_client_gets_a_working_token_with_a_signed_assertion(
    world, api, settings, key_name, as_jwk
):
    assert settings.token_endpoint == TOKEN_URL
    client = await register(world, api, key_name, as_jwk=as_jwk)
    token = await bearer(api, client.assertion())
    assert jwt.decode(token, options={"verify_signature": False})["client_id"] == client.client_id
    assert (await messages(api, token)).status_code == 200


async def test_an_assertion_is_accepted_once_only(world, api):
    client = await register(world, api)
    assertion = client.assertion()
    await bearer(api, assertion)
    await assert_refused(world, token_request(api, assertion), "replayed_assertion")
    await bearer(api, client.assertion())  # a fresh one still works


@dataclass
class Kit:
    client: KeyClient
    secret: tuple[str, str]  # a client_secret_basic client of the same organisation

    def signed(self, **changes: Any) -> str:
        return self.client.assertion(self.client.claims(**changes))


def _shifted(seconds: int) -> dict[str, int]:
    """iat moved by seconds from now, and a 60 s lifetime from there."""
    now = int(time.time())
    return {"iat": now + seconds, "exp": now + seconds + 60}


BAD_ASSERTIONS: dict[str, Callable[[Kit], str]] = {
    "wrong iss": lambda k: k.signed(iss=k.secret[0]),
    "wrong sub": lambda k: k.signed(sub="cli_nobody_at_all"),
    "aud is the issuer": lambda k: k.signed(aud=ISSUER),
    "aud another URL": lambda k: k.signed(aud="http://elsewhere.test/oauth/token"),
    "expired 90 s ago": lambda k: k.signed(**_shifted(-150)),
    "lives 301 s": lambda k: k.signed(exp=int(time.time()) + 301),
    # exp - iat is 60 s, yet the assertion would be usable from now until tomorrow.
    "iat a day ahead": lambda k: k.signed(**_shifted(86400)),
    "no jti": lambda k: k.signed(jti=None),
    "another EC key": lambda k: k.client.assertion(key=private_key("ec-other")),
    "HS256 keyed with the public PEM": lambda k: hs256(k.client.claims(), public_pem(k.client.key)),
    "alg none": lambda k: jwt.encode(k.client.claims(), None, "none"),
    "kid of another key": lambda k: k.client.assertion(kid=thumbprint(private_key("ec-other"))),
    "for a secret client": lambda k: k.signed(iss=k.secret[0], sub=k.secret[0]),
    # The jti is stored: it must be one line of Unicode text, as RFC 7519 makes it a string.
    "jti holding NUL": lambda k: k.signed(jti="one\x00two"),
    "jti holding a lone surrogate": lambda k: k.signed(jti="one\ud800"),
}
SAML = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
REFUSALS: dict[str, tuple[Callable[[Kit], dict[str, Any]], str]] = {
    **{
        case: (lambda k, f=f: {"assertion": f(k)}, "bad_assertion")
        for case, f in BAD_ASSERTIONS.items()
    },
    "assertion type wrong": (
        lambda k: {"assertion": k.signed(), "assertion_type": SAML},
        "malformed",
    ),
    "Basic and an assertion": (lambda k: {"assertion": k.signed(), "auth": k.secret}, "malformed"),
    # A client id is looked up before anything is verified: NUL there was a 500 on PostgreSQL.
    "Basic, a client id holding NUL": (lambda k: {"auth": ("a\x00b", "secret")}, "malformed"),
    "Basic, a client id holding a tab": (lambda k: {"auth": ("a\tb", "secret")}, "malformed"),
    "sub and iss holding NUL": (
        lambda k: {"assertion": k.signed(iss="a\x00b", sub="a\x00b")},
        "malformed",
    ),
    "secret for a key client": (lambda k: {"auth": (k.client.client_id, "a-guess")}, "bad_secret"),
    # A key client has no secret hash; the app compares with hash_secret("-") in its place.
    "secret '-' for a key client": (lambda k: {"auth": (k.client.client_id, "-")}, "bad_secret"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_the_token_endpoint_refuses(world, api, case):
    kit = Kit(await register(world, api), await world.credentials("N07"))
    make, reason = REFUSALS[case]
    await assert_refused(world, token_request(api, **make(kit)), reason)


# --- secret rotation -------------------------------------------------------------------------


async def rotate(world, api, client_id: str, overlap: int) -> httpx.Response:
    body = {"overlap_seconds": overlap}
    return await operator(world, api, f"MDI/clients/{client_id}/secret", body)


async def test_rotation_keeps_the_old_secret_for_the_overlap_then_never(world, api):
    client_id, old = await world.credentials("MDI")
    response = await rotate(world, api, client_id, 86400)
    assert response.status_code == 200, response.text
    new = response.json()["client_secret"]
    assert new and new != old
    until = datetime.fromisoformat(response.json()["previous_secret_valid_until"])
    assert abs(until - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=5)
    for secret in (old, new):
        await bearer(api, auth=(client_id, secret))

    async with world.sessions() as session, session.begin():
        await session.execute(
            update(ApiClient)
            .where(ApiClient.client_id == client_id)
            .values(previous_secret_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await assert_refused(world, token_request(api, auth=(client_id, old)), "bad_secret")
    await bearer(api, auth=(client_id, new))


async def test_rotation_without_overlap_stops_the_old_secret_at_once(world, api):
    client_id, old = await world.credentials("MDI")
    response = await rotate(world, api, client_id, 0)
    assert response.status_code == 200, response.text
    assert response.json()["previous_secret_valid_until"] is None
    await assert_refused(world, token_request(api, auth=(client_id, old)), "bad_secret")
    await bearer(api, auth=(client_id, response.json()["client_secret"]))


async def test_a_key_client_has_no_secret_to_rotate(world, api):
    client = await register(world, api)
    response = await operator(world, api, f"N07/clients/{client.client_id}/secret", {})
    assert_problem(response, 409)
    await bearer(api, client.assertion())


# --- disabling -------------------------------------------------------------------------------


async def test_disabling_a_client_stops_its_token_at_once_and_its_next(world, api):
    client_id, secret = await world.credentials("N07")
    sibling = await world.credentials("N07")
    token, sibling_token = (
        await bearer(api, auth=(client_id, secret)),
        await bearer(api, auth=sibling),
    )
    assert (await messages(api, token)).status_code == 200

    response = await operator(world, api, f"N07/clients/{client_id}/disable")
    assert response.status_code == 200, response.text
    assert response.json()["disabled_at"]
    assert_problem(await messages(api, token), 401)
    await assert_refused(world, token_request(api, auth=(client_id, secret)), "disabled")
    assert (await messages(api, sibling_token)).status_code == 200


async def test_disabling_an_organisation_stops_every_client_of_it(world, api):
    secret_client = await world.credentials("N07")
    key_client = await register(world, api)
    elsewhere = await world.credentials("N99")
    tokens = [await bearer(api, auth=secret_client), await bearer(api, key_client.assertion())]
    elsewhere_token = await bearer(api, auth=elsewhere)

    response = await operator(world, api, "N07/disable")
    assert response.status_code == 200, response.text
    assert response.json()["disabled_at"]
    for token in tokens:
        assert_problem(await messages(api, token), 401)
    await assert_refused(world, token_request(api, auth=secret_client), "disabled")
    await assert_refused(world, token_request(api, key_client.assertion()), "disabled")
    assert (await messages(api, elsewhere_token)).status_code == 200


async def test_the_operator_cannot_disable_its_own_organisation(world, api):
    assert_problem(await operator(world, api, "OPS/disable"), 409)
    assert await world.sql("SELECT disabled_at FROM organisation WHERE code = 'OPS'") == [(None,)]
    response = await api.get("/v1/organisations", headers=await world.headers("OPS"))
    assert response.status_code == 200, response.text


# --- throttling ------------------------------------------------------------------------------


async def test_guessing_is_throttled_per_source_and_counted_without_client_ids(world, api, app):
    client_id, secret = await world.credentials("N07")
    for _ in range(5):
        await assert_refused(world, token_request(api, auth=(client_id, "guess")), "bad_secret")

    throttled = await token_request(api, auth=(client_id, secret))
    assert_problem(throttled, 429)
    assert throttled.headers["retry-after"].isdigit()
    assert 0 < int(throttled.headers["retry-after"]) <= 301

    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as elsewhere:
        await bearer(elsewhere, auth=(client_id, secret))

    text = await metrics(world)
    assert 'exchange_client_auth_failures_total{reason="bad_secret"} 5.0' in text
    assert "exchange_client_auth_throttled_total 1.0" in text
    assert client_id not in text
