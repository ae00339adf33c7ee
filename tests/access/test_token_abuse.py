"""What a security review of identity found, held in place: replay at the edge of validity,
memory bounds, parallel guessing, hostile token shapes, and checks whose removal went unseen.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from app.settings import Settings
from app.storage.models import ApiClient, ClientAssertion
from tests.helpers.tokens import assert_refused, bearer, messages, register, token_request


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def nested_token(depth: int = 50_000) -> str:
    """A token whose claims nest deeper than a JSON parser's recursion limit."""
    header = b64url(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "x"}).encode())
    return f"{header}.{b64url(('[' * depth + ']' * depth).encode())}.c2ln"


async def test_an_assertion_at_the_edge_of_its_validity_is_still_used_once_only(world, api):
    client = await register(world, api)
    exp = int(time.time()) - 59  # expired, but inside the 60 s clock skew
    assertion = client.assertion(client.claims(iat=exp - 60, exp=exp))
    await bearer(api, assertion)
    await assert_refused(world, token_request(api, assertion), "replayed_assertion")


async def test_parallel_uses_of_one_assertion_give_exactly_one_token(world, api):
    client = await register(world, api)
    assertion = client.assertion()
    answers = await asyncio.gather(*(token_request(api, assertion) for _ in range(8)))
    codes = [a.status_code for a in answers]
    # Exactly one succeeds; the others are refused as replays, or by the throttle.
    assert codes.count(200) == 1 and set(codes) - {200} <= {401, 429}


@pytest.mark.parametrize("jti", ["", "   "])
async def test_a_blank_jti_is_no_jti(world, api, jti):
    client = await register(world, api)
    request = token_request(api, client.assertion(client.claims(jti=jti)))
    await assert_refused(world, request, "bad_assertion")


async def test_expired_assertion_ids_are_forgotten(world, api):
    client = await register(world, api)
    async with world.sessions() as session, session.begin():
        session.add(
            ClientAssertion(
                client_id=client.client_id,
                jti="old",
                expires_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    await bearer(api, client.assertion())
    async with world.sessions() as session:
        kept = (await session.scalars(select(ClientAssertion.jti))).all()
    assert "old" not in kept and len(kept) == 1


@pytest.mark.parametrize("where", ["basic", "assertion"])
async def test_an_overlong_client_id_never_reaches_the_throttle(app, api, world, where):
    huge = "c" * 10_000
    if where == "basic":
        request = token_request(api, auth=(huge, "guess"))
    else:
        client = await register(world, api)
        request = token_request(api, client.assertion(client.claims(sub=huge, iss=huge)))
    await assert_refused(world, request, "malformed")
    assert all(len(key[0]) <= 64 for key in app.state.throttle._failures)


async def test_parallel_guesses_cannot_slip_past_the_throttle(world, api, settings):
    client_id, _ = await world.credentials("MDI")
    answers = await asyncio.gather(
        *(token_request(api, auth=(client_id, f"guess-{n}")) for n in range(20))
    )
    codes = [a.status_code for a in answers]
    assert codes.count(401) <= settings.client_auth_failure_limit
    assert codes.count(429) >= 20 - settings.client_auth_failure_limit


async def test_a_success_wipes_the_slate_for_its_source(world, api, settings):
    client_id, secret = await world.credentials("MDI")
    for _ in range(2):
        for n in range(settings.client_auth_failure_limit - 1):
            await token_request(api, auth=(client_id, f"guess-{n}"))
        assert (await token_request(api, auth=(client_id, secret))).status_code == 200


@pytest.mark.parametrize("where", ["bearer", "assertion"])
async def test_a_token_nested_past_the_parsers_limit_is_refused_not_a_500(world, api, where):
    if where == "bearer":
        response = await api.get(
            "/v1/messages", headers={"authorization": f"Bearer {nested_token()}"}
        )
        assert response.status_code == 401
    else:
        await assert_refused(world, token_request(api, nested_token()), "malformed")


async def test_a_token_keeps_only_the_scopes_its_client_still_holds(world, api):
    client_id, secret = await world.credentials("N07")
    token = await bearer(api, auth=(client_id, secret))
    assert (await messages(api, token)).status_code == 200
    async with world.sessions() as session, session.begin():
        await session.execute(
            update(ApiClient)
            .where(ApiClient.client_id == client_id)
            .values(scopes="subscriptions:write")
        )
    refused = await messages(api, token)
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="messages:read"' in challenge


def test_access_tokens_cannot_be_set_to_live_past_five_minutes():
    with pytest.raises(ValidationError):
        Settings(access_token_ttl_seconds=301)
    assert Settings(access_token_ttl_seconds=300).access_token_ttl_seconds == 300
