"""A recipient's encryption key: what is accepted and kept, what is refused and why; set and
removed by the recipient (API) or the operator (CLI), each change in the log with its kid only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwcrypto import jwk as jwcrypto_jwk

from app.keys.recipient_keys import encryption_jwk

PROBLEM = "application/problem+json"


def pem_public(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def pem_private(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def jwk_of(key: Any, private: bool = False, **members: Any) -> str:
    """The key as a JWK made by jwcrypto (not by the exchange), with members changed."""
    made = jwcrypto_jwk.JWK.from_pem(pem_private(key).encode())
    document = json.loads(made.export(private_key=private))
    document.update(members)
    return json.dumps({k: v for k, v in document.items() if v is not None})


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def refused_keys(rsa_key) -> dict[str, tuple[str, str]]:
    """Every kind of key refused: (the text given, what the refusal must say)."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    public_jwk = json.loads(jwk_of(rsa_key))
    return {
        "rsa-private-pem": (pem_private(rsa_key), "never the private one"),
        "rsa-private-jwk": (jwk_of(rsa_key, private=True), "never the private one"),
        "ec-public-pem": (pem_public(ec_key), "must be RSA"),
        "ec-public-jwk": (jwk_of(ec_key), "must be RSA"),
        "symmetric-jwk": (json.dumps({"kty": "oct", "k": "c2VjcmV0"}), "never the private one"),
        "rsa-1024": (pem_public(small), "1024 bits"),
        "jwk-alg-rs256": (jwk_of(rsa_key, alg="RS256"), "only RSA-OAEP-256"),
        "jwk-alg-rsa1_5": (jwk_of(rsa_key, alg="RSA1_5"), "only RSA-OAEP-256"),
        "jwk-use-sig": (jwk_of(rsa_key, use="sig"), "not enc"),
        "jwk-key-ops-verify": (jwk_of(rsa_key, key_ops=["verify"]), "key_ops"),
        "jwk-kid-empty": (jwk_of(rsa_key, kid=""), "kid must be"),
        "jwk-kid-number": (jwk_of(rsa_key, kid=7), "kid must be"),
        # The kid is stored and sent back in each JWE's header: one line of Unicode only.
        "jwk-kid-lone-surrogate": (jwk_of(rsa_key, kid="\ud800"), "lone surrogate"),
        "jwk-kid-nul": (jwk_of(rsa_key, kid="n07\x00enc"), "kid must be"),
        "jwk-kid-line-break": (jwk_of(rsa_key, kid="n07\nenc"), "kid must be"),
        "jwk-member-twice": (
            jwk_of(rsa_key).replace('"kty": "RSA"', '"kty": "EC", "kty": "RSA"'),
            "/kty is a member given twice",
        ),
        "jwk-nested-deep": (
            jwk_of(rsa_key)[:-1] + ', "x5c": ' + "[" * 40 + "]" * 40 + "}",
            "nests deeper than 32",
        ),
        "jwk-n-not-base64url": (
            json.dumps({**public_jwk, "n": public_jwk["n"] + "!"}),
            "n and e",
        ),
        "jwk-even-exponent": (json.dumps({**public_jwk, "e": "Ag"}), "n and e"),
        "jwk-not-json": ('{"kty": "RSA",', "not valid JSON"),
        "jwk-not-an-object": ("[1, 2]", "neither a PEM public key nor a JWK"),
        "garbage": ("not a key at all", "neither a PEM public key nor a JWK"),
    }


# --- what is kept ------------------------------------------------------------------------------


def test_a_pem_key_is_kept_as_a_public_jwk_named_by_its_thumbprint(rsa_key) -> None:
    kept = encryption_jwk(pem_public(rsa_key))
    independent = jwcrypto_jwk.JWK.from_pem(pem_public(rsa_key).encode())
    assert set(kept) == {"kty", "n", "e", "kid", "alg", "use"}
    assert (kept["kty"], kept["alg"], kept["use"]) == ("RSA", "RSA-OAEP-256", "enc")
    assert kept["kid"] == independent.thumbprint()  # RFC 7638, SHA-256
    assert (kept["n"], kept["e"]) == (independent["n"], independent["e"])


@pytest.mark.parametrize(
    "members",
    [{}, {"kid": "n07-enc-2026"}, {"alg": "RSA-OAEP-256", "use": "enc", "key_ops": ["wrapKey"]}],
    ids=["bare", "own-kid", "all-said"],
)
def test_a_jwk_keeps_its_own_kid_or_gets_the_thumbprint(rsa_key, members) -> None:
    kept = encryption_jwk(jwk_of(rsa_key, **members))
    assert kept == encryption_jwk(pem_public(rsa_key)) | {
        "kid": members.get("kid")
        or jwcrypto_jwk.JWK.from_pem(pem_public(rsa_key).encode()).thumbprint()
    }


REFUSED = [
    "rsa-private-pem",
    "rsa-private-jwk",
    "ec-public-pem",
    "ec-public-jwk",
    "symmetric-jwk",
    "rsa-1024",
    "jwk-alg-rs256",
    "jwk-alg-rsa1_5",
    "jwk-use-sig",
    "jwk-key-ops-verify",
    "jwk-kid-empty",
    "jwk-kid-number",
    "jwk-kid-lone-surrogate",
    "jwk-kid-nul",
    "jwk-kid-line-break",
    "jwk-member-twice",
    "jwk-nested-deep",
    "jwk-n-not-base64url",
    "jwk-even-exponent",
    "jwk-not-json",
    "jwk-not-an-object",
    "garbage",
]


@pytest.mark.parametrize("name", REFUSED)
def test_a_refused_key_says_why(refused_keys, name: str) -> None:
    assert sorted(refused_keys) == sorted(REFUSED)
    text, says = refused_keys[name]
    with pytest.raises(ValueError, match=says):
        encryption_jwk(text)


# --- the recipient, through the API ---------------------------------------------------------


async def audit_entries(world, action_prefix: str) -> list[tuple[str, dict]]:
    rows = await world.sql(
        "SELECT action, details FROM audit_entry WHERE action LIKE :p ORDER BY id",
        p=f"{action_prefix}%",
    )
    return [(a, d if isinstance(d, dict) else json.loads(d)) for a, d in rows]


async def test_a_recipient_sets_reads_and_removes_its_key(world, rsa_key) -> None:
    headers = await world.headers("N07")
    assert (await world.api.get("/v1/encryption-key", headers=headers)).status_code == 404

    put = await world.api.put(
        "/v1/encryption-key", json={"key": pem_public(rsa_key)}, headers=headers
    )
    assert put.status_code == 200, put.text
    assert put.json() == encryption_jwk(pem_public(rsa_key))
    got = await world.api.get("/v1/encryption-key", headers=headers)
    assert got.status_code == 200 and got.json() == put.json()
    # The same key again is no change; another organisation's key is its own.
    again = await world.api.put(
        "/v1/encryption-key", json={"key": pem_public(rsa_key)}, headers=headers
    )
    assert again.json() == put.json()
    other = await world.api.get("/v1/encryption-key", headers=await world.headers("SMS-LEEDS"))
    assert other.status_code == 404

    assert (await world.api.delete("/v1/encryption-key", headers=headers)).status_code == 204
    gone = await world.api.get("/v1/encryption-key", headers=headers)
    assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM
    assert (await world.api.delete("/v1/encryption-key", headers=headers)).status_code == 204

    kid = put.json()["kid"]
    assert await audit_entries(world, "organisation.encryption_key") == [
        ("organisation.encryption_key_set", {"code": "N07", "via": "api", "kid": kid}),
        ("organisation.encryption_key_removed", {"code": "N07", "via": "api", "kid": kid}),
    ]
    (row,) = await world.sql(
        "SELECT actor_client_id, subject_organisation_id FROM audit_entry"
        " WHERE action = 'organisation.encryption_key_set'"
    )
    assert row[0] is not None and str(row[1]).replace("-", "") == world.ids["N07"].hex


async def test_every_refused_key_is_a_422_naming_why_and_changes_nothing(
    world, rsa_key, refused_keys
) -> None:
    headers = await world.headers("N07")
    kept = await world.api.put(
        "/v1/encryption-key", json={"key": pem_public(rsa_key)}, headers=headers
    )
    assert kept.status_code == 200
    for name, (text, says) in refused_keys.items():
        response = await world.api.put("/v1/encryption-key", json={"key": text}, headers=headers)
        assert response.status_code == 422, (name, response.text)
        assert response.headers["content-type"] == PROBLEM
        (error,) = response.json()["errors"]
        assert error["pointer"] == "/key" and says in error["detail"], (name, error)
    for body in ({}, {"key": ""}, {"key": "x" * 8193}, {"key": pem_public(rsa_key), "more": 1}):
        response = await world.api.put("/v1/encryption-key", json=body, headers=headers)
        assert response.status_code == 422, body
    still = await world.api.get("/v1/encryption-key", headers=headers)
    assert still.json() == kept.json()
    assert len(await audit_entries(world, "organisation.encryption_key")) == 1


# --- the operator, through the CLI ----------------------------------------------------------


def ok(result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def refused(result, says: str) -> None:
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert says in result.stderr


def test_the_operator_sets_and_removes_a_recipients_key(run, tmp_path: Path, rsa_key) -> None:
    ok(run("org", "add", "--kind", "probation_provider", "--code", "N07", "--name", "N07"))
    key_file = tmp_path / "n07-enc.json"
    key_file.write_text(jwk_of(rsa_key, kid="n07-enc-1"))

    printed = ok(run("org", "encryption-key", "--org", "N07", "--key", str(key_file)))
    assert printed == {"code": "N07", "encryption_jwk": encryption_jwk(key_file.read_text())}
    assert printed["encryption_jwk"]["kid"] == "n07-enc-1"
    assert ok(run("org", "encryption-key", "--org", "N07", "--remove")) == {
        "code": "N07",
        "encryption_jwk": None,
    }


@pytest.mark.parametrize(
    ("arrange", "args", "says"),
    [
        (None, ("--org", "MDI", "--key", "{key}"), "only a recipient"),
        (None, ("--org", "NOPE", "--key", "{key}"), "no organisation"),
        (None, ("--org", "N07", "--key", "{ec}"), "must be RSA"),
        (None, ("--org", "N07", "--key", "{private}"), "never the private one"),
        (None, ("--org", "N07"), "either --key FILE or --remove"),
        (None, ("--org", "N07", "--key", "{key}", "--remove"), "either --key FILE or --remove"),
        (lambda p: p.write_bytes(b"\xff\xfe"), ("--org", "N07", "--key", "{key}"), "PEM or JWK"),
    ],
)
def test_the_operator_is_refused_with_a_reason(
    run, tmp_path: Path, rsa_key, arrange: Callable[[Path], object] | None, args, says
) -> None:
    ok(run("org", "add", "--kind", "probation_provider", "--code", "N07", "--name", "N07"))
    ok(run("org", "add", "--kind", "prison", "--code", "MDI", "--name", "MDI"))
    files = {
        "key": tmp_path / "key.pem",
        "ec": tmp_path / "ec.pem",
        "private": tmp_path / "private.pem",
    }
    files["key"].write_text(pem_public(rsa_key))
    files["ec"].write_text(pem_public(ec.generate_private_key(ec.SECP256R1())))
    files["private"].write_text(pem_private(rsa_key))
    if arrange:
        arrange(files["key"])
    refused(
        run(
            "org",
            "encryption-key",
            *(a.format(**{k: str(v) for k, v in files.items()}) for a in args),
        ),
        says,
    )
