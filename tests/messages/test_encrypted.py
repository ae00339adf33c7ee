"""Sign, then encrypt: a recipient with an encryption key gets each message as a compact JWE
(RSA-OAEP-256, A256GCM, cty JWT) around the signed JWS. Decrypted here with jwcrypto and the
recipient's private key, and the JWS inside verified with PyJWT against the published JWKS:
two independent libraries, neither of them the exchange's own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jwt
from standardwebhooks.webhooks import Webhook

from app.worker.loop import http_client, run_once
from tests.helpers.encryption import Recipient, register
from tests.helpers.receiver import running_receiver

ISSUER = "http://exchange.test"
NOTICES = "/v1/release-notices"


async def inbox(world, code: str) -> list[dict[str, Any]]:
    response = await world.api.get("/v1/messages", headers=await world.headers(code))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def verified(api, jws: str, audience: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of the inner JWS, checked with PyJWT against the published JWKS."""
    assert jws.count(".") == 2
    header = jwt.get_unverified_header(jws)
    keys = (await api.get("/.well-known/jwks.json")).json()["keys"]
    (key,) = [jwt.PyJWK(k) for k in keys if k["kid"] == header["kid"]]
    claims = jwt.decode(jws, key, algorithms=["ES256"], audience=audience, issuer=ISSUER)
    return header, claims


async def opened(world, recipient: Recipient, kid: str, item: dict[str, Any], code: str):
    """Decrypt an inbox item or webhook data, check the envelope, and verify what is inside."""
    if "jws" in item:  # an inbox item has both members; a webhook's data has only one
        assert item["jws"] is None
    protected, inner = recipient.decrypt(item["jwe"])
    assert protected == {"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT", "kid": kid}
    return await verified(world.api, inner, code)


async def signed_details(world, message_id: str) -> dict[str, Any]:
    """The message.signed log entry's details, as an auditor reads them."""
    response = await world.api.get(
        "/v1/audit/entries",
        params={"action": "message.signed", "limit": 200},
        headers=await world.headers("AUDIT"),
    )
    assert response.status_code == 200, response.text
    (entry,) = [e for e in response.json()["items"] if e["message_id"] == message_id]
    return entry["details"]


def by_recipient(accepted: dict[str, Any], kind: str = "disclosure") -> dict[str, str]:
    return {
        r["organisation_code"]: r["message_id"]
        for r in accepted["recipients"]
        if r["kind"] == kind and r["message_id"]
    }


async def test_a_recipient_with_a_key_gets_its_messages_signed_then_encrypted(world, example):
    n07 = Recipient(kid="n07-enc-1")
    kid = await register(world, "N07", n07)
    assert kid == "n07-enc-1"
    response = await world.post_notice(example)
    assert response.status_code == 202, response.text
    sent = by_recipient(response.json())
    assert "N07" in sent

    (item,) = await inbox(world, "N07")
    assert item["id"] == sent["N07"] and item["jws"] is None
    assert item["jwe"].count(".") == 4
    header, claims = await opened(world, n07, kid, item, "N07")
    assert header["typ"] == "disclosure+jwt" and header["alg"] == "ES256"
    assert claims["jti"] == sent["N07"] and claims["aud"] == "N07"
    assert claims["disclosure"]["safeguarding"]  # the minimised view, whole inside
    one = await world.api.get(f"/v1/messages/{sent['N07']}", headers=await world.headers("N07"))
    assert one.json()["jwe"] == item["jwe"]  # stored once, the same bytes every time

    details = await signed_details(world, sent["N07"])
    assert details["encrypted_to"] == kid
    assert len(details["jwe_sha256"]) == 64 and len(details["jws_sha256"]) == 64
    # A recipient without a key still gets the signed message as it was.
    unencrypted = await inbox(world, "SMS-LEEDS")
    assert [i["id"] for i in unencrypted] == [sent["SMS-LEEDS"]]
    for item in unencrypted:
        assert item["jwe"] is None and item["jws"].count(".") == 2
        await verified(world.api, item["jws"], "SMS-LEEDS")
        assert "encrypted_to" not in await signed_details(world, item["id"])


async def test_messages_made_before_the_key_stay_signed_only_and_later_ones_do_not(world, example):
    first = by_recipient((await world.post_notice(example)).json())["N07"]
    n07 = Recipient()
    kid = await register(world, "N07", n07)
    assert kid == n07.jwk.thumbprint()  # no kid given: the RFC 7638 thumbprint
    cancelled = await world.api.post(
        f"{NOTICES}/{(await inbox(world, 'N07'))[0]['notice_id']}/cancellation",
        json={"reason": "entered_in_error"},
        headers=await world.headers("MDI"),
    )
    assert cancelled.status_code == 202, cancelled.text

    before, cancellation = await inbox(world, "N07")
    assert before["id"] == first and before["jwe"] is None
    _, claims = await verified(world.api, before["jws"], "N07")
    assert claims["jti"] == first
    # The cancellation, made after the key was set, is encrypted like any other kind.
    assert cancellation["kind"] == "cancellation" and cancellation["jws"] is None
    header, claims = await opened(world, n07, kid, cancellation, "N07")
    assert header["typ"] == "cancellation+jwt" and claims["supersedes"] == first

    # Once the key is removed, what is made next is signed only again.
    headers = await world.headers("N07")
    assert (await world.api.delete("/v1/encryption-key", headers=headers)).status_code == 204
    again = by_recipient((await world.post_notice(example)).json())["N07"]
    latest = (await inbox(world, "N07"))[-1]
    assert latest["id"] == again and latest["jwe"] is None
    await verified(world.api, latest["jws"], "N07")


async def test_a_replaced_key_is_used_from_then_on(world, example):
    old, new = Recipient(kid="k-old"), Recipient(kid="k-new")
    await register(world, "N07", old)
    await world.post_notice(example)
    await register(world, "N07", new)
    await world.post_notice(example)
    first, second = (i for i in await inbox(world, "N07") if i["kind"] == "disclosure")
    await opened(world, old, "k-old", first, "N07")
    await opened(world, new, "k-new", second, "N07")


async def test_the_webhook_carries_the_jwe_and_the_receiver_can_open_it(world, example, settings):
    n07 = Recipient()
    kid = await register(world, "N07", n07)
    with running_receiver() as receiver:
        subscribed = await world.api.post(
            "/v1/subscriptions", json={"url": receiver.url}, headers=await world.headers("N07")
        )
        assert subscribed.status_code == 201, subscribed.text
        message_id = by_recipient((await world.post_notice(example)).json())["N07"]
        async with http_client() as client:
            assert await run_once(world.sessions, client, settings, data_keys=world.data_keys) >= 1
        (delivered,) = [r for r in receiver.wait_for(1) if r.headers["webhook-id"] == message_id]
    Webhook(subscribed.json()["secret"]).verify(delivered.body, delivered.headers)
    event = json.loads(delivered.body)
    assert event["type"] == "disclosure.created"
    assert "jws" not in event["data"] and event["data"]["message_id"] == message_id
    _, claims = await opened(world, n07, kid, event["data"], "N07")
    assert claims["jti"] == message_id
    assert datetime.fromtimestamp(claims["iat"], UTC) <= datetime.now(UTC)
