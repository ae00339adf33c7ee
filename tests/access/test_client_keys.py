"""Registering a client's public key: every key that cannot be used is a 422 naming
/public_key in the exchange's own words, before any JOSE library sees it (a deeply nested JWK
or one on curve P-999 was once a 500). Keys are made with cryptography and PyJWT."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from jwt.algorithms import ECAlgorithm

from tests.helpers.tokens import assert_problem, operator, private_key, private_pem, public_pem

BAD_KEYS: dict[str, Callable[[], str]] = {
    "a private key PEM": lambda: private_pem(private_key("ec")),
    "EC P-384": lambda: public_pem(private_key("p384")),
    "RSA-1024": lambda: public_pem(private_key("rsa1024")),
    "garbage text": lambda: "this is not a key",
    "garbage PEM": lambda: "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
    "a JWK with d": lambda: ECAlgorithm.to_jwk(private_key("ec")),
    # Once a 500 each: what a JOSE library would raise on is refused before it sees the key.
    "a JWK nested deeper than the parser's stack": lambda: (
        '{"kty": "EC", "crv": "P-256", "x5c": ' + "[" * 3000 + "]" * 3000 + "}"
    ),
    "a JWK on curve P-999": lambda: ec_jwk(crv="P-999"),
    "a JWK with no crv": lambda: ec_jwk(crv=None),
    "a JWK whose point is off the curve": lambda: ec_jwk(y=ec_jwk_members()["x"]),
    "a JWK whose x is not base64url": lambda: ec_jwk(x="not base64url!"),
    "a JWK of kty oct": lambda: json.dumps({"kty": "oct", "alg": "ES256"}),
    "a JWK of alg PS256": lambda: ec_jwk(alg="PS256"),
    "a JWK with kty twice": lambda: ec_jwk().replace('"kty": "EC"', '"kty": "RSA", "kty": "EC"'),
    "a JWK whose kid holds NUL": lambda: ec_jwk(kid="k\x00"),
    "a JWK whose kid is a lone surrogate": lambda: ec_jwk(kid="\udfff"),
}


def ec_jwk_members(**changes: Any) -> dict[str, Any]:
    members = ECAlgorithm.to_jwk(private_key("ec").public_key(), as_dict=True) | changes
    return {k: v for k, v in members.items() if v is not None}


def ec_jwk(**changes: Any) -> str:
    return json.dumps(ec_jwk_members(**changes))


@pytest.mark.parametrize("case", list(BAD_KEYS))
async def test_registration_refuses_an_unusable_key(world, api, case):
    """A 422 naming the member, in the exchange's own words, never a library's text."""
    await world.headers("OPS")
    before = await world.counts()
    response = await operator(world, api, "N07/clients", {"public_key": BAD_KEYS[case]()})
    problem = assert_problem(response, 422)
    (error,) = problem["errors"]
    assert error["pointer"] == "/public_key"
    assert error["detail"].startswith("not a usable public key: ")
    assert not re.search(r"https?://|PEM file|Error|Exception|\\u", error["detail"])
    assert await world.counts() == before
