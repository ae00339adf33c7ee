"""Who may call: the token endpoint, bearer-token verification against forged tokens, scopes.

Hostile tokens are made with PyJWT and cryptography, never with the exchange's own code.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import HMACAlgorithm
from sqlalchemy import update

from app.keys.jose import CLOCK_SKEW_SECONDS
from app.storage.models import ApiClient, Organisation

README = Path(__file__).resolve().parents[2] / "README.md"
ISSUER = "http://exchange.test"
PROBLEM = "application/problem+json"
ACCESS_TYP = "at+jwt"

# DESIGN section 5, "Scopes": what a client of each kind holds when nothing narrows it.
KIND_SCOPES = {
    # A prison also reads, subscribes to and acknowledges the alerts about its notices.
    "MDI": {
        "release-notices:write",
        "consents:write",
        "reports:read",
        "messages:read",
        "subscriptions:write",
        "acknowledgements:write",
    },
    "N07": {
        "messages:read",
        "subscriptions:write",
        "acknowledgements:write",
        "updates:write",
    },
    "SMS-LEEDS": {
        "consents:write",
        "messages:read",
        "subscriptions:write",
        "acknowledgements:write",
        "updates:write",
    },
    "AUDIT": {"audit:read", "reports:read"},
    "OPS": {"admin", "metrics:read", "reports:read"},
}


async def request_token(api, auth=None, headers=None, **form: str):
    data = {"grant_type": "client_credentials", **form}
    return await api.post("/oauth/token", data=data, auth=auth, headers=headers)


async def jwks_key(api, token: str) -> jwt.PyJWK:
    kid = jwt.get_unverified_header(token)["kid"]
    keys = (await api.get("/.well-known/jwks.json")).json()["keys"]
    (match,) = [k for k in keys if k["kid"] == kid]
    return jwt.PyJWK(match)


def assert_problem(response, status: int, challenge: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    if challenge:
        assert response.headers["www-authenticate"].startswith(challenge)
    return body


# --- the token endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(KIND_SCOPES))
async def test_token_is_an_es256_access_token_verifiable_with_the_jwks(world, api, code):
    client_id, secret = await world.credentials(code)
    response = await request_token(api, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 300
    assert set(body["scope"].split()) == KIND_SCOPES[code]

    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == ACCESS_TYP and header["alg"] == "ES256"
    claims = jwt.decode(
        token, await jwks_key(api, token), algorithms=["ES256"], audience=ISSUER, issuer=ISSUER
    )
    assert claims["client_id"] == client_id and claims["sub"] == client_id
    assert set(claims["scope"].split()) == KIND_SCOPES[code]
    assert uuid.UUID(claims["jti"])
    assert 0 < claims["exp"] - claims["iat"] <= 300


def _basic(value: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(value.encode()).decode()}


CLIENT_REFUSALS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "wrong secret": lambda cid, _: {"auth": (cid, "not-the-secret")},
    "unknown client": lambda _, secret: {"auth": ("cli_nobody", secret)},
    "no authorization": lambda cid, secret: {},
    "not base64": lambda cid, secret: {"headers": {"authorization": "Basic %%%not-base64%%%"}},
    "no colon": lambda cid, secret: {"headers": _basic(cid + secret)},
    "bearer, not basic": lambda cid, secret: {"headers": {"authorization": f"Bearer {secret}"}},
}


@pytest.mark.parametrize("case", list(CLIENT_REFUSALS))
async def test_token_endpoint_refuses_bad_client_authentication(world, api, case):
    client_id, secret = await world.credentials("N07")
    response = await request_token(api, **CLIENT_REFUSALS[case](client_id, secret))
    body = assert_problem(response, 401, challenge="Basic")
    assert body["error"] == "invalid_client"
    assert "access_token" not in body


async def test_token_endpoint_refuses_other_grant_types(world, api):
    auth = await world.credentials("N07")
    response = await request_token(api, auth=auth, grant_type="password")
    assert assert_problem(response, 400)["error"] == "unsupported_grant_type"


async def test_token_endpoint_refuses_a_scope_the_client_lacks(world, api):
    auth = await world.credentials("MDI")
    response = await request_token(api, auth=auth, scope="release-notices:write audit:read")
    assert assert_problem(response, 400)["error"] == "invalid_scope"


async def test_a_narrowed_token_carries_only_the_requested_scopes(world, api):
    auth = await world.credentials("SMS-LEEDS")
    response = await request_token(api, auth=auth, scope="messages:read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "messages:read"
    token = response.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == "messages:read"

    headers = {"authorization": f"Bearer {token}"}
    assert (await api.get("/v1/messages", headers=headers)).status_code == 200
    refused = await api.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/"}, headers=headers
    )
    assert_problem(refused, 403)


# --- bearer tokens ---------------------------------------------------------------------------


class _AnyKeyHMAC(HMACAlgorithm):
    """PyJWT refuses PEM text as an HMAC key; an attacker's library would not."""

    def prepare_key(self, key: str | bytes) -> bytes:
        return key.encode() if isinstance(key, str) else key


@dataclass
class Kit:
    """What a forger needs: the exchange's real key and kid, a real client, a real token."""

    kid: str
    key: ec.EllipticCurvePrivateKey
    client_id: str
    real_token: str
    public_jwk: dict[str, str]

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": ISSUER,
            "sub": self.client_id,
            "client_id": self.client_id,
            "scope": "messages:read subscriptions:write",
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any] | None = None, *, key=None, **header: Any) -> str:
        headers = {"kid": self.kid, "typ": ACCESS_TYP, **header}
        return jwt.encode(claims or self.claims(), key or self.key, "ES256", headers=headers)

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def hs256(self, secret: str) -> str:
        signer = jwt.PyJWS()
        signer.unregister_algorithm("HS256")
        signer.register_algorithm("HS256", _AnyKeyHMAC(HMACAlgorithm.SHA256))
        payload = json.dumps(self.claims()).encode()
        return signer.encode(payload, secret, "HS256", headers={"kid": self.kid, "typ": ACCESS_TYP})

    def tampered(self) -> str:
        header, payload, signature = self.real_token.split(".")
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        position = text.index('"jti":"') + len('"jti":"')
        changed = text[:position] + ("0" if text[position] != "0" else "1") + text[position + 1 :]
        assert len(changed) == len(text) and changed != text
        forged = base64.urlsafe_b64encode(changed.encode()).rstrip(b"=").decode()
        return f"{header}.{forged}.{signature}"


@pytest.fixture
async def kit(world, api, settings) -> Kit:
    kid = (settings.keys_dir / "current").read_text().strip()
    key = serialization.load_pem_private_key(
        (settings.keys_dir / f"{kid}.pem").read_bytes(), password=None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    token = await world.token("N07")
    client_id = jwt.decode(token, options={"verify_signature": False})["client_id"]
    keys = (await api.get("/.well-known/jwks.json")).json()["keys"]
    (public_jwk,) = [k for k in keys if k["kid"] == kid]
    return Kit(kid, key, client_id, token, public_jwk)


def _seconds_ago(seconds: int) -> dict[str, int]:
    now = int(time.time())
    return {"iat": now - seconds - 300, "exp": now - seconds}


HOSTILE_TOKENS: dict[str, Callable[[Kit], str]] = {
    "alg none": lambda k: jwt.encode(
        k.claims(), None, "none", headers={"kid": k.kid, "typ": ACCESS_TYP}
    ),
    "hs256 keyed with public PEM": lambda k: k.hs256(k.public_pem()),
    "hs256 keyed with public JWK": lambda k: k.hs256(json.dumps(k.public_jwk)),
    "another key, real kid": lambda k: k.sign(key=ec.generate_private_key(ec.SECP256R1())),
    "unknown kid": lambda k: k.sign(kid="not-a-key-of-the-exchange"),
    "no kid": lambda k: jwt.encode(k.claims(), k.key, "ES256", headers={"typ": ACCESS_TYP}),
    "expired 2 minutes ago": lambda k: k.sign(k.claims(**_seconds_ago(120))),
    "no exp": lambda k: k.sign(k.claims(exp=None)),
    "wrong aud": lambda k: k.sign(k.claims(aud="http://elsewhere.test")),
    "wrong iss": lambda k: k.sign(k.claims(iss="http://elsewhere.test")),
    "typ JWT": lambda k: k.sign(typ="JWT"),
    "typ disclosure+jwt": lambda k: k.sign(typ="disclosure+jwt"),
    "payload changed": lambda k: k.tampered(),
    "not a JWT": lambda k: "not.a.jwt",
}


async def _messages(api, token: str | None):
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return await api.get("/v1/messages", headers=headers)


async def test_forged_tokens_are_accepted_when_nothing_is_wrong(api, kit):
    """The control: without it, the refusals below could pass for an unrelated reason."""
    assert (await _messages(api, kit.real_token)).status_code == 200
    assert (await _messages(api, kit.sign())).status_code == 200


async def test_a_token_expired_inside_the_clock_skew_is_accepted(api, kit):
    response = await _messages(api, kit.sign(kit.claims(**_seconds_ago(30))))
    assert response.status_code == 200, response.text


async def test_the_clock_skew_the_readme_states_is_the_one_applied(api, kit):
    text = README.read_text()
    section = text[text.index("## Credentials and tokens") :]
    stated = re.search(r"accepted up to (\d+) seconds after its `exp`", section)
    assert stated and int(stated.group(1)) == CLOCK_SKEW_SECONDS
    inside = kit.sign(kit.claims(**_seconds_ago(CLOCK_SKEW_SECONDS - 3)))
    outside = kit.sign(kit.claims(**_seconds_ago(CLOCK_SKEW_SECONDS + 3)))
    assert (await _messages(api, inside)).status_code == 200
    assert_problem(await _messages(api, outside), 401, challenge="Bearer")


async def test_a_request_without_a_token_is_refused(api, kit):
    assert_problem(await _messages(api, None), 401, challenge="Bearer")


@pytest.mark.parametrize("case", list(HOSTILE_TOKENS))
async def test_hostile_tokens_are_refused(api, kit, case):
    response = await _messages(api, HOSTILE_TOKENS[case](kit))
    body = assert_problem(response, 401, challenge="Bearer")
    assert "items" not in body


@pytest.mark.parametrize(
    ("model", "column"),
    [(ApiClient, "client_id"), (Organisation, "code")],
    ids=["client disabled", "organisation disabled"],
)
async def test_tokens_die_with_their_client_or_organisation(app, api, kit, model, column):
    assert (await _messages(api, kit.real_token)).status_code == 200
    value = kit.client_id if model is ApiClient else "N07"
    async with app.state.sessions() as session, session.begin():
        await session.execute(
            update(model)
            .where(getattr(model, column) == value)
            .values(disabled_at=datetime.now(UTC))
        )
    assert_problem(await _messages(api, kit.real_token), 401, challenge="Bearer")


# --- scopes (DESIGN section 5) -------------------------------------------------------------

MESSAGES = ("GET", "/v1/messages")
SUBSCRIBE = ("POST", "/v1/subscriptions")
AUDIT = ("GET", "/v1/audit/entries")
NOTICE = ("POST", "/v1/release-notices")

FORBIDDEN = [
    ("MDI", *AUDIT),
    ("N07", *NOTICE),
    ("N07", *AUDIT),
    ("AUDIT", *MESSAGES),
    ("AUDIT", *SUBSCRIBE),
    ("AUDIT", *NOTICE),
    *[("OPS", *route) for route in (MESSAGES, SUBSCRIBE, AUDIT, NOTICE)],
]
ALLOWED = [
    ("MDI", *NOTICE),
    # A prison is sent alerts about its notices (receipt.overdue): it reads and subscribes.
    ("MDI", *MESSAGES),
    ("MDI", *SUBSCRIBE),
    ("N07", *MESSAGES),
    ("N07", *SUBSCRIBE),
    ("SMS-LEEDS", *MESSAGES),
    ("SMS-LEEDS", *SUBSCRIBE),
    ("AUDIT", *AUDIT),
]


async def _call(world, api, example, code: str, method: str, path: str):
    bodies = {SUBSCRIBE[1]: {"url": "http://127.0.0.1:9/hook"}, NOTICE[1]: example}
    return await api.request(method, path, json=bodies.get(path), headers=await world.headers(code))


@pytest.mark.parametrize(("code", "method", "path"), FORBIDDEN)
async def test_scope_table_forbids(world, api, example, code, method, path):
    await world.headers(code)  # registers the client first: it is not what is counted
    before = await world.counts()
    response = await _call(world, api, example, code, method, path)
    assert_problem(response, 403)
    assert await world.counts() == before


@pytest.mark.parametrize(("code", "method", "path"), ALLOWED)
async def test_scope_table_allows(world, api, example, code, method, path):
    response = await _call(world, api, example, code, method, path)
    assert response.status_code not in (401, 403), response.text
    assert response.status_code < 300, response.text
