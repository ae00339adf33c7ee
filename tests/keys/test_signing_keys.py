"""Rotation through the published endpoints: /.well-known/jwks.json holds the current key and
those in their grace period; /v1/signing-keys holds every key ever used, without a token.

Time is driven by the recorded retirement times (as `exchange keys rotate` writes them), and
keys are read at start-up, so each case builds its app after arranging the key directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from app.access import organisations as admin
from app.keys import jose, signing_keys
from app.main import create_app
from app.settings import Settings

ISSUER = "http://exchange.test"
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def settings_for(tmp_path: Path, grace_days: int = 30) -> Settings:
    # These endpoints never touch the database: the file need not even exist.
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        data_dir=tmp_path / "data",
        issuer=ISSUER,
        embedded_worker=False,
        signing_key_grace_days=grace_days,
    )


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            yield client


def rotated(settings: Settings, *ages: timedelta) -> list[str]:
    """A first key, then one rotation per age (how long ago it happened, oldest first): every
    kid, oldest first; the last one is current."""
    first = jose.load_keyring(settings.keys_dir).current.kid
    now = datetime.now(UTC)
    return [first] + [signing_keys.new_signing_key(settings.keys_dir, now=now - a) for a in ages]


async def published(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [k["kid"] for k in response.json()["keys"]]


async def listed(client: httpx.AsyncClient) -> list[dict]:
    response = await client.get("/v1/signing-keys")  # no token
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


async def test_within_grace_the_old_key_is_in_the_jwks_and_listed_as_grace(tmp_path) -> None:
    settings = settings_for(tmp_path, grace_days=30)
    old, new = rotated(settings, timedelta(days=29, hours=23))
    async with serving(settings) as client:
        assert await published(client) == [new, old]
        items = await listed(client)
    assert [(i["kid"], i["status"]) for i in items] == [(new, "current"), (old, "grace")]
    assert items[0]["retired_at"] is None
    retired_at = (settings.keys_dir / f"{old}.retired").read_text().strip()
    assert items[1]["retired_at"] == retired_at
    assert all("d" not in i["jwk"] for i in items)


async def test_after_grace_the_old_key_leaves_the_jwks_but_stays_listed(tmp_path) -> None:
    settings = settings_for(tmp_path, grace_days=30)
    oldest, old, new = rotated(settings, timedelta(days=90), timedelta(days=30, seconds=1))
    async with serving(settings) as client:
        assert await published(client) == [new]
        items = await listed(client)
        assert [(i["kid"], i["status"]) for i in items] == [
            (new, "current"),
            (old, "retired"),
            (oldest, "retired"),
        ]
        one = await client.get(f"/v1/signing-keys/{oldest}")
        assert one.status_code == 200
        assert one.json() == items[2]


async def test_the_grace_period_is_a_setting(tmp_path) -> None:
    settings = settings_for(tmp_path, grace_days=2)
    old, new = rotated(settings, timedelta(days=3))
    async with serving(settings) as client:
        assert await published(client) == [new]
    settings = settings_for(tmp_path, grace_days=4)
    async with serving(settings) as client:
        assert await published(client) == [new, old]


@pytest.mark.parametrize("bad", ["0", "-1", "x"])
def test_a_grace_period_under_a_day_is_refused(monkeypatch, bad: str) -> None:
    monkeypatch.setenv("EXCHANGE_SIGNING_KEY_GRACE_DAYS", bad)
    with pytest.raises(ValueError, match="signing_key_grace_days"):
        Settings()


async def test_an_unknown_kid_is_a_404_problem(tmp_path) -> None:
    async with serving(settings_for(tmp_path)) as client:
        response = await client.get("/v1/signing-keys/not-a-kid")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_a_message_signed_before_rotation_verifies_with_the_listed_key(tmp_path) -> None:
    """Signed long ago with a key long out of the JWKS: PyJWT verifies it with the public key
    /v1/signing-keys/{kid} gives, found by the message's own kid."""
    settings = settings_for(tmp_path, grace_days=1)
    ring = jose.load_keyring(settings.keys_dir)
    claims = {"iss": ISSUER, "aud": "N07", "iat": 1, "jti": "m-1", "notice_id": "n-1"}
    signed = jose.sign(ring, claims, typ="disclosure+jwt")
    signing_keys.new_signing_key(settings.keys_dir, now=datetime.now(UTC) - timedelta(days=365))
    async with serving(settings) as client:
        kid = jwt.get_unverified_header(signed)["kid"]
        assert kid not in await published(client)
        entry = (await client.get(f"/v1/signing-keys/{kid}")).json()
    assert entry["status"] == "retired"
    key = jwt.PyJWK(entry["jwk"]).key
    assert jwt.decode(signed, key, algorithms=["ES256"], audience="N07", issuer=ISSUER) == claims


async def test_an_access_token_works_while_its_key_is_in_grace_and_not_after(settings) -> None:
    """A token issued before a rotation (and a restart) keeps working through the grace
    period, on the real API and database; once the grace is over its key verifies no token."""
    async with serving(settings) as client:
        sessions = client._transport.app.state.sessions  # type: ignore[attr-defined]
        now = datetime.now(UTC)
        async with sessions() as session, session.begin():
            await admin.add_organisation(
                session, kind="probation_provider", code="N07", name="N07", now=now
            )
        async with sessions() as session, session.begin():
            api_client, secret = await admin.add_client(
                session, organisation_code="N07", scopes=None, now=now
            )
        answer = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(api_client.client_id, secret),
        )
        assert answer.status_code == 200, answer.text
        headers = {"authorization": f"Bearer {answer.json()['access_token']}"}
        assert (await client.get("/v1/messages", headers=headers)).status_code == 200
    old = jose.load_keyring(settings.keys_dir).current.kid
    signing_keys.new_signing_key(settings.keys_dir, now=datetime.now(UTC) - timedelta(days=29))
    async with serving(settings) as client:
        assert (await client.get("/v1/messages", headers=headers)).status_code == 200
    (settings.keys_dir / f"{old}.retired").write_text(
        (datetime.now(UTC) - timedelta(days=30, seconds=1)).strftime(STAMP)
    )
    async with serving(settings) as client:
        refused = await client.get("/v1/messages", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"


def test_a_group_readable_key_file_stops_start_up_naming_it(tmp_path) -> None:
    settings = settings_for(tmp_path)
    kid = jose.load_keyring(settings.keys_dir).current.kid
    (settings.keys_dir / f"{kid}.pem").chmod(0o640)
    with pytest.raises(signing_keys.KeyFileError, match=f"{kid}.pem"):
        create_app(settings)


def test_exchange_serve_refuses_a_group_readable_key_file_naming_it(tmp_path, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from app.cli import diagnostics as logs
    from app.cli.main import cli

    settings = settings_for(tmp_path)
    monkeypatch.setenv("EXCHANGE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", settings.database_url)
    kid = jose.load_keyring(settings.keys_dir).current.kid
    (settings.keys_dir / f"{kid}.pem").chmod(0o644)

    def never(*args, **kwargs):  # the server must not start, let alone with this key
        raise AssertionError("served with a key file others may read")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.setattr(logs, "configure", lambda: None)  # leave the test run's logging alone
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2, result.output
    assert f"{kid}.pem" in result.stderr and "chmod 600" in result.stderr
