"""The operator's commands beyond `add`: clients with a public key, secret rotation, disabling.
Results on stdout as JSON only; refusals on stderr with exit code 2; the database is checked."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select

from app.access.identity import hash_secret
from app.access.tokens import Presented, authenticate_client
from app.storage.db import make_engine, make_sessionmaker
from app.storage.log_tables import AuditEntry
from app.storage.models import ApiClient, Organisation
from app.wire.errors import Problem

TOKEN_ENDPOINT = "http://exchange.test/oauth/token"
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def ok(result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def refused(result, says: str) -> None:
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert says in result.stderr


def fetch(database_url: str, model, **where) -> list[Any]:
    async def go() -> list[Any]:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                return list((await session.scalars(select(model).filter_by(**where))).all())
        finally:
            await engine.dispose()

    return asyncio.run(go())


def authenticates(database_url: str, proof: Presented, now: datetime | None = None) -> str:
    """'ok', or the reason the exchange's own client authentication gives for refusing."""

    async def go() -> str:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                await authenticate_client(
                    session, proof, token_endpoint=TOKEN_ENDPOINT, now=now or datetime.now(UTC)
                )
                return "ok"
        except Problem as problem:
            return problem.reason
        finally:
            await engine.dispose()

    return asyncio.run(go())


def logged(database_url: str, action: str, code: str) -> list[AuditEntry]:
    return [e for e in fetch(database_url, AuditEntry, action=action) if e.details["code"] == code]


@pytest.fixture
def mdi(run) -> None:
    ok(run("org", "add", "--kind", "prison", "--code", "MDI", "--name", "HMP Moorland"))
    ok(run("org", "add", "--kind", "probation_provider", "--code", "N07", "--name", "Leeds PDU"))


# --- clients that sign assertions -------------------------------------------------------------


def _public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _assertion(key: ec.EllipticCurvePrivateKey, client_id: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": TOKEN_ENDPOINT, "iat": now}
    claims |= {"exp": now + 60, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, "ES256")


@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_a_client_with_a_public_key_gets_no_secret(run, mdi, database_url, tmp_path, form):
    key = ec.generate_private_key(ec.SECP256R1())
    text = _public_pem(key) if form == "pem" else ECAlgorithm.to_jwk(key.public_key())
    path = tmp_path / f"client.{form}"
    path.write_text(text)
    printed = ok(run("client", "add", "--org", "MDI", "--public-key", str(path)))
    assert printed["client_secret"] is None
    assert set(printed["scopes"].split()) == {
        "release-notices:write",
        "consents:write",
        "reports:read",
        "messages:read",
        "subscriptions:write",
        "acknowledgements:write",
    }
    (client,) = fetch(database_url, ApiClient, client_id=printed["client_id"])
    assert client.secret_sha256 is None and client.previous_secret_sha256 is None
    expected = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    assert client.public_jwk["kty"] == "EC" and client.public_jwk["alg"] == "ES256"
    assert (client.public_jwk["x"], client.public_jwk["y"]) == (expected["x"], expected["y"])
    assert "d" not in client.public_jwk
    # The key registered is the one given: an assertion it signs authenticates the client.
    client_id = printed["client_id"]
    signed = Presented(client_id, assertion=_assertion(key, client_id))
    assert authenticates(database_url, signed) == "ok"
    other = ec.generate_private_key(ec.SECP256R1())
    forged = Presented(client_id, assertion=_assertion(other, client_id))
    assert authenticates(database_url, forged) == "bad_assertion"
    (entry,) = logged(database_url, "client.created", "MDI")
    assert entry.details == {
        "code": "MDI",
        "via": "cli",
        "client_id": client_id,
        "method": "private_key_jwt",
    }
    assert entry.actor_client_id is None and entry.actor_organisation_id is None


@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_a_private_key_is_refused(run, mdi, database_url, tmp_path, form) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    if form == "pem":
        text = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    else:
        text = ECAlgorithm.to_jwk(key)
        assert '"d"' in text
    path = tmp_path / f"private.{form}"
    path.write_text(text)
    refused(run("client", "add", "--org", "MDI", "--public-key", str(path)), "public key only")
    assert fetch(database_url, ApiClient) == []
    assert logged(database_url, "client.created", "MDI") == []


# --- secret rotation --------------------------------------------------------------------------


def test_rotate_secret_keeps_the_old_one_for_the_overlap_only(run, mdi, database_url) -> None:
    first = ok(run("client", "add", "--org", "MDI"))
    client_id, old = first["client_id"], first["client_secret"]
    started = datetime.now(UTC).replace(microsecond=0)
    printed = ok(run("client", "rotate-secret", "--org", "MDI", client_id, "--overlap-hours", "1"))
    assert printed["client_id"] == client_id
    new = printed["client_secret"]
    assert new and new != old
    (client,) = fetch(database_url, ApiClient, client_id=client_id)
    assert client.secret_sha256 == hash_secret(new)
    assert client.previous_secret_sha256 == hash_secret(old)
    until = client.previous_secret_expires_at
    assert printed["previous_secret_valid_until"] == until.strftime(STAMP)
    assert started + timedelta(hours=1) <= until <= datetime.now(UTC) + timedelta(hours=1)
    assert authenticates(database_url, Presented(client_id, secret=new)) == "ok"
    assert authenticates(database_url, Presented(client_id, secret=old)) == "ok"
    later = until + timedelta(seconds=1)
    assert authenticates(database_url, Presented(client_id, secret=old), later) == "bad_secret"
    assert authenticates(database_url, Presented(client_id, secret=new), later) == "ok"
    (entry,) = logged(database_url, "client.secret_rotated", "MDI")
    assert entry.details["client_id"] == client_id and entry.details["overlap_seconds"] == 3600
    assert old not in json.dumps(entry.details) and new not in json.dumps(entry.details)

    again = ok(run("client", "rotate-secret", "--org", "MDI", client_id, "--overlap-hours", "0"))
    assert again["previous_secret_valid_until"] is None
    (client,) = fetch(database_url, ApiClient, client_id=client_id)
    assert client.previous_secret_sha256 is None and client.previous_secret_expires_at is None
    assert authenticates(database_url, Presented(client_id, secret=new)) == "bad_secret"
    assert authenticates(database_url, Presented(client_id, secret=again["client_secret"])) == "ok"


def test_rotate_secret_refusals(run, mdi, database_url, tmp_path) -> None:
    client_id = ok(run("client", "add", "--org", "MDI"))["client_id"]
    refused(run("client", "rotate-secret", "--org", "MDI", "cli_nope"), "no client cli_nope")
    refused(run("client", "rotate-secret", "--org", "N07", client_id), "no client")
    refused(run("client", "rotate-secret", "--org", "NOPE", client_id), "no organisation")
    path = tmp_path / "client.pem"
    path.write_text(_public_pem(ec.generate_private_key(ec.SECP256R1())))
    keyed = ok(run("client", "add", "--org", "MDI", "--public-key", str(path)))["client_id"]
    refused(run("client", "rotate-secret", "--org", "MDI", keyed), "authenticates with its key")
    assert logged(database_url, "client.secret_rotated", "MDI") == []
    (keyed_client,) = fetch(database_url, ApiClient, client_id=keyed)
    assert keyed_client.secret_sha256 is None


# --- disabling -------------------------------------------------------------------------------


def test_client_disable_stops_that_client_only(run, mdi, database_url) -> None:
    first = ok(run("client", "add", "--org", "MDI"))
    second = ok(run("client", "add", "--org", "MDI"))
    printed = ok(run("client", "disable", "--org", "MDI", first["client_id"]))
    assert printed["client_id"] == first["client_id"] and printed["disabled_at"]
    (client,) = fetch(database_url, ApiClient, client_id=first["client_id"])
    assert client.disabled_at is not None
    assert client.disabled_at.strftime(STAMP) == printed["disabled_at"]
    proof = Presented(first["client_id"], secret=first["client_secret"])
    assert authenticates(database_url, proof) == "disabled"
    other = Presented(second["client_id"], secret=second["client_secret"])
    assert authenticates(database_url, other) == "ok"
    assert len(logged(database_url, "client.disabled", "MDI")) == 1
    refused(run("client", "disable", "--org", "MDI", "cli_nope"), "no client cli_nope")
    refused(run("client", "disable", "--org", "N07", second["client_id"]), "no client")
    (untouched,) = fetch(database_url, ApiClient, client_id=second["client_id"])
    assert untouched.disabled_at is None


def test_org_disable_stops_its_clients(run, mdi, database_url) -> None:
    mdi_client = ok(run("client", "add", "--org", "MDI"))
    n07_client = ok(run("client", "add", "--org", "N07"))
    printed = ok(run("org", "disable", "MDI"))
    assert printed["code"] == "MDI" and printed["disabled_at"]
    (organisation,) = fetch(database_url, Organisation, code="MDI")
    assert organisation.disabled_at is not None
    assert organisation.disabled_at.strftime(STAMP) == printed["disabled_at"]
    (n07,) = fetch(database_url, Organisation, code="N07")
    assert n07.disabled_at is None
    proof = Presented(mdi_client["client_id"], secret=mdi_client["client_secret"])
    assert authenticates(database_url, proof) == "disabled"
    proof = Presented(n07_client["client_id"], secret=n07_client["client_secret"])
    assert authenticates(database_url, proof) == "ok"
    (entry,) = logged(database_url, "organisation.disabled", "MDI")
    assert entry.details == {"code": "MDI", "via": "cli"}
    assert entry.subject_organisation_id == organisation.id
    refused(run("org", "disable", "NOPE"), "no organisation with code NOPE")


@pytest.mark.parametrize("content", [None, b"\x30\x82\x01\x0a\xff\xfe"], ids=["missing", "binary"])
def test_an_unreadable_key_file_is_a_refusal_not_a_crash(run, tmp_path, content) -> None:
    assert run("org", "add", "--kind", "prison", "--code", "MDI", "--name", "HMP").exit_code == 0
    path = tmp_path / "key.der"
    if content is not None:
        path.write_bytes(content)
    result = run("client", "add", "--org", "MDI", "--public-key", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["HMP\x00Wealstun", "HMP\nWealstun", "HMP\x1bWealstun"])
def test_the_command_line_refuses_a_name_the_api_refuses(run, database_url, name) -> None:
    """The operator's command keeps the API's rule: a name is one line without control
    characters (NUL was stored by SQLite and a 500 on PostgreSQL)."""
    refused(run("org", "add", "--kind", "prison", "--code", "WYI", "--name", name), "one line")
    assert fetch(database_url, Organisation, code="WYI") == []
