"""Access tokens from a trusted external OAuth server: accepted only when signed by a key of its
JWKS file for an enabled organisation the token names, and never beyond that kind's scopes."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, RSAAlgorithm
from pydantic import ValidationError
from sqlalchemy import select, text

from app.main import create_app
from app.settings import Settings
from app.storage.models import StoredNotice

ISSUER = "http://exchange.test"
IDP = "https://prison-idp.example"
PROBLEM = "application/problem+json"


@dataclass
class Idp:
    """The external OAuth server: its two keys, as its JWKS file publishes them."""

    ec_key: ec.EllipticCurvePrivateKey
    rsa_key: rsa.RSAPrivateKey
    jwks: Path

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": IDP,
            "aud": ISSUER,
            "sub": "moorland-cms",
            "client_id": "moorland-cms",
            "scope": "release-notices:write",
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            "org": "MDI",
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, claims: dict[str, Any] | None = None, *, alg="ES256", key=None, **header):
        key = key or (self.ec_key if alg == "ES256" else self.rsa_key)
        headers = {"kid": "idp-1" if alg == "ES256" else "idp-2", "typ": "at+jwt", **header}
        headers = {k: v for k, v in headers.items() if v is not None}
        return jwt.encode(claims or self.claims(), key, alg, headers=headers)

    def hs256(self, secret: str, kid: str) -> str:
        signer = jwt.PyJWS()
        signer.unregister_algorithm("HS256")
        signer.register_algorithm("HS256", _AnyKeyHMAC(HMACAlgorithm.SHA256))
        payload = json.dumps(self.claims()).encode()
        return signer.encode(payload, secret, "HS256", headers={"kid": kid, "typ": "at+jwt"})


class _AnyKeyHMAC(HMACAlgorithm):
    """PyJWT refuses PEM text as an HMAC key; an attacker's library would not."""

    def prepare_key(self, key: str | bytes) -> bytes:
        return key.encode() if isinstance(key, str) else key


def _pem(key) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Idp:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = [
        {**json.loads(ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "idp-1", "use": "sig"},
        {**json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "idp-2", "use": "sig"},
    ]
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return Idp(ec_key, rsa_key, path)


@contextlib.asynccontextmanager
async def exchange_trusting(settings: Settings, jwks: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The exchange trusting the IdP, on the same database as `world` (which registers MDI...)."""
    trusting = settings.model_copy(
        update={
            "trusted_issuer": IDP,
            "trusted_issuer_jwks": jwks,
            "trusted_issuer_organisation_claim": "org",
        }
    )
    application = create_app(trusting)
    assert application.state.trusted_issuer is not None
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            yield client


@pytest.fixture
async def trusted_api(settings: Settings, idp: Idp, world) -> AsyncIterator[httpx.AsyncClient]:
    async with exchange_trusting(settings, idp.jwks) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_refused(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 401 and body["title"] and body["detail"] and body["type"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "recipients" not in body


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_a_trusted_token_posts_a_notice_for_its_organisation(
    trusted_api, idp, world, example, alg
) -> None:
    response = await trusted_api.post(
        "/v1/release-notices", json=example, headers=bearer(idp.token(alg=alg))
    )
    assert response.status_code == 202, response.text
    notice_id = response.json()["id"]
    rows = await world.sql(
        "SELECT actor_client_id FROM audit_entry WHERE action = 'notice.received'"
    )
    assert [r[0] for r in rows] == ["ext:moorland-cms"]  # told apart from the exchange's own
    async with world.sessions() as session:
        owners = (await session.scalars(select(StoredNotice.organisation_id))).all()
    assert owners == [world.ids["MDI"]]
    status = await trusted_api.get(
        f"/v1/release-notices/{notice_id}", headers=bearer(idp.token(alg=alg))
    )
    assert status.status_code == 200, status.text  # the notice is MDI's, and the token MDI's


async def test_scopes_are_capped_by_the_organisations_kind(trusted_api, idp, example) -> None:
    greedy = idp.token(idp.claims(scope="audit:read release-notices:write admin"))
    posted = await trusted_api.post("/v1/release-notices", json=example, headers=bearer(greedy))
    assert posted.status_code == 202, posted.text  # the control: the token itself is good
    audit = await trusted_api.get("/v1/audit/entries", headers=bearer(greedy))
    assert audit.status_code == 403, audit.text
    admin = await trusted_api.get("/v1/organisations", headers=bearer(greedy))
    assert admin.status_code == 403, admin.text


async def test_a_token_for_another_prison_cannot_post_mdis_notice(trusted_api, idp, example):
    lpi = idp.token(idp.claims(org="LPI"))
    response = await trusted_api.post("/v1/release-notices", json=example, headers=bearer(lpi))
    assert response.status_code == 422, response.text
    assert "/release/prison_code" in {e["pointer"] for e in response.json()["errors"]}


# --- refused ---------------------------------------------------------------------------------


def _expired(idp: Idp) -> str:
    now = int(time.time())
    return idp.token(idp.claims(iat=now - 420, exp=now - 120))


REFUSED: dict[str, Callable[[Idp], str]] = {
    "unknown organisation": lambda i: i.token(i.claims(org="XYZ")),
    # An external issuer never speaks for the operator or an auditor, whatever it claims.
    "an operator organisation": lambda i: i.token(i.claims(org="OPS", scope="admin")),
    "an auditor organisation": lambda i: i.token(i.claims(org="AUDIT", scope="audit:read")),
    "no organisation claim": lambda i: i.token(i.claims(org=None)),
    "organisation under the default claim name": lambda i: i.token(
        i.claims(org=None, organisation="MDI")
    ),
    "organisation claim not a string": lambda i: i.token(i.claims(org=["MDI"])),
    "wrong aud": lambda i: i.token(i.claims(aud="https://elsewhere.example")),
    "no aud": lambda i: i.token(i.claims(aud=None)),
    "expired": _expired,
    "no exp": lambda i: i.token(i.claims(exp=None)),
    # RFC 9068 holds for a trusted issuer's tokens as for the exchange's own.
    "no jti": lambda i: i.token(i.claims(jti=None)),
    "no sub": lambda i: i.token(i.claims(sub=None)),
    "lives a year": lambda i: i.token(i.claims(exp=int(time.time()) + 365 * 86400)),
    "issued ten years ago": lambda i: i.token(i.claims(iat=int(time.time()) - 10 * 365 * 86400)),
    "empty client_id and sub": lambda i: i.token(i.claims(client_id="", sub="")),
    "iat true": lambda i: i.token(i.claims(iat=True)),
    "alg none": lambda i: jwt.encode(
        i.claims(), None, "none", headers={"kid": "idp-1", "typ": "at+jwt"}
    ),
    "another key, kid idp-1": lambda i: i.token(key=ec.generate_private_key(ec.SECP256R1())),
    "another key, kid idp-2": lambda i: i.token(
        alg="RS256", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ),
    "hs256 keyed with the EC public key": lambda i: i.hs256(_pem(i.ec_key.public_key()), "idp-1"),
    "hs256 keyed with the RSA public key": lambda i: i.hs256(_pem(i.rsa_key.public_key()), "idp-2"),
    "PS256 with the RS256 key": lambda i: i.token(alg="PS256", kid="idp-2"),
    "EC key under the RSA kid": lambda i: i.token(kid="idp-2"),
    "no kid": lambda i: i.token(kid=None),
    "unknown kid": lambda i: i.token(kid="idp-9"),
    "typ JWT": lambda i: i.token(typ="JWT"),
    "no typ": lambda i: i.token(typ=None),
    "iss neither ours nor trusted": lambda i: i.token(i.claims(iss="https://other-idp.example")),
    "the exchange's iss, the IdP's key": lambda i: i.token(i.claims(iss=ISSUER)),
    "client_id too long": lambda i: i.token(i.claims(client_id="c" * 65, sub="c" * 65)),
    # Claims that would be looked up or logged: NUL would be a 500 on PostgreSQL alone.
    "organisation claim holding NUL": lambda i: i.token(i.claims(org="MD\x00I")),
    "client_id holding NUL": lambda i: i.token(i.claims(client_id="idp\x00client")),
    "client_id holding a line break": lambda i: i.token(i.claims(client_id="idp\nclient")),
    "client_id beyond ASCII": lambda i: i.token(i.claims(client_id="idp-clïent")),
}


async def test_the_forger_kit_works(trusted_api, idp, example) -> None:
    """The control: each refusal below differs from this accepted token in one thing only."""
    response = await trusted_api.post(
        "/v1/release-notices", json=example, headers=bearer(idp.token())
    )
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("case", list(REFUSED))
async def test_hostile_or_wrong_tokens_are_refused(trusted_api, idp, world, example, case):
    token = REFUSED[case](idp)
    response = await trusted_api.post("/v1/release-notices", json=example, headers=bearer(token))
    assert_refused(response)
    assert (await world.counts())["release_notice"] == 0


@pytest.mark.parametrize("how", ["operator API", "SQL"])
async def test_a_disabled_organisations_tokens_are_refused(trusted_api, api, idp, world, how):
    token = bearer(idp.token(idp.claims(org="N07", scope="messages:read")))
    assert (await trusted_api.get("/v1/messages", headers=token)).status_code == 200
    if how == "SQL":
        async with world.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE organisation SET disabled_at = CURRENT_TIMESTAMP WHERE code = 'N07'")
            )
    else:
        disabled = await api.post(
            "/v1/organisations/N07/disable", headers=await world.headers("OPS")
        )
        assert disabled.status_code == 200, disabled.text
    assert_refused(await trusted_api.get("/v1/messages", headers=token))


async def test_without_a_trusted_issuer_the_same_token_is_refused(app, api, idp, world, example):
    assert app.state.trusted_issuer is None
    response = await api.post("/v1/release-notices", json=example, headers=bearer(idp.token()))
    assert_refused(response)
    assert (await world.counts())["release_notice"] == 0


def test_a_jwks_key_marked_ps256_is_refused_at_start_up(settings, tmp_path) -> None:
    """python-jose has no PS256: rather than a key that can never verify, the exchange does
    not start, and says why."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    document = {"keys": [{**public, "kid": "idp-3", "alg": "PS256", "use": "sig"}]}
    path = tmp_path / "jwks-ps256.json"
    path.write_text(json.dumps(document))
    trusting = settings.model_copy(update={"trusted_issuer": IDP, "trusted_issuer_jwks": path})
    with pytest.raises(ValueError, match="alg must be RS256"):
        create_app(trusting)


# --- settings --------------------------------------------------------------------------------


def test_settings_refuse_a_trusted_issuer_without_its_jwks(tmp_path, idp) -> None:
    with pytest.raises(ValidationError, match="go together"):
        Settings(issuer=ISSUER, trusted_issuer=IDP)
    with pytest.raises(ValidationError, match="go together"):
        Settings(issuer=ISSUER, trusted_issuer_jwks=idp.jwks)
    whole = Settings(issuer=ISSUER, trusted_issuer=IDP, trusted_issuer_jwks=idp.jwks)
    assert whole.trusted_issuer == IDP  # the control


def test_settings_refuse_the_exchanges_own_issuer_as_trusted(idp) -> None:
    with pytest.raises(ValidationError, match="own issuer"):
        Settings(issuer=ISSUER, trusted_issuer=ISSUER, trusted_issuer_jwks=idp.jwks)


async def test_the_idps_keys_cannot_vouch_for_the_exchanges_own_clients(
    trusted_api, idp, world, example
) -> None:
    """Keys are chosen by issuer: an IdP-signed token claiming the exchange's own iss and naming
    a real local client must not pass as that client."""
    client_id, _ = await world.credentials("MDI")
    claims = idp.claims(iss=ISSUER, client_id=client_id, sub=client_id)
    for alg in ("ES256", "RS256"):
        response = await trusted_api.post(
            "/v1/release-notices", json=example, headers=bearer(idp.token(claims, alg=alg))
        )
        assert_refused(response)
