"""Webhook subscriptions: the secret shown once, only your own, SSRF refused, deletion honoured."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.main import create_app
from app.storage.models import Subscription
from app.worker.loop import http_client, run_once
from tests.helpers.problems import assert_problem
from tests.helpers.receiver import running_receiver
from tests.helpers.subscriptions import HOOK, get, subscribe

ISSUER = "http://exchange.test"
PROBLEM = "application/problem+json"


async def test_a_subscription_shows_its_secret_once(world):
    created = await subscribe(world)
    assert created["secret"].startswith("whsec_")
    assert created["url"] == HOOK and created["status"] == "active"
    assert created["disabled_reason"] is created["disabled_at"] is None
    assert created["previous_secret_expires_at"] is None
    secret = created["secret"].removeprefix("whsec_")

    listed = await get(world, "/v1/subscriptions")
    one = await get(world, f"/v1/subscriptions/{created['id']}")
    assert listed.status_code == 200 and one.status_code == 200
    assert [s["id"] for s in listed.json()["items"]] == [created["id"]]
    assert one.json()["id"] == created["id"] and one.json()["url"] == HOOK
    for response in (listed, one):
        assert secret not in response.text and "whsec_" not in response.text
    for shown in (listed.json()["items"][0], one.json()):
        assert "secret" not in shown and "previous_secret" not in shown


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("PATCH", "", {"status": "disabled"}),
        ("POST", "/secret-rotation", {}),
    ],
)
async def test_another_organisation_cannot_see_or_change_it(world, method, path, body):
    created = await subscribe(world)
    await world.headers("N99")
    before = await world.counts()
    response = await world.api.request(
        method,
        f"/v1/subscriptions/{created['id']}{path}",
        json=body,
        headers=await world.headers("N99"),
    )
    assert_problem(response, 404)
    assert await world.counts() == before
    assert (await get(world, "/v1/subscriptions", "N99")).json()["items"] == []
    still = await get(world, f"/v1/subscriptions/{created['id']}")
    assert still.json()["status"] == "active"


async def test_an_unknown_subscription_is_not_found(world):
    assert_problem(await get(world, f"/v1/subscriptions/{uuid.uuid4()}"), 404)


async def test_an_auditor_cannot_subscribe_and_a_prison_can(world):
    await world.headers("AUDIT")
    before = await world.counts()
    response = await world.api.post(
        "/v1/subscriptions", json={"url": HOOK}, headers=await world.headers("AUDIT")
    )
    assert_problem(response, 403)
    assert await world.counts() == before
    # A prison is sent alerts about its notices (receipt.overdue), so it may subscribe.
    response = await world.api.post(
        "/v1/subscriptions", json={"url": HOOK}, headers=await world.headers("MDI")
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active" and response.json()["secret"]


# --- where a webhook may not go --------------------------------------------------------------


@pytest.fixture
async def strict_api(settings) -> AsyncIterator[httpx.AsyncClient]:
    """The exchange as deployed: no network is allowed beyond the public internet."""
    application = create_app(settings.model_copy(update={"webhook_allowed_cidrs": ()}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            yield client


REFUSED_URLS = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://100.64.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "https://user:password@example.org/hook",
    "ftp://example.org/hook",
    "not a url",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_webhooks_to_private_or_odd_places_are_refused(world, strict_api, url):
    headers = await world.headers("N07")
    before = await world.counts()
    response = await strict_api.post("/v1/subscriptions", json={"url": url}, headers=headers)
    body = assert_problem(response, 422)
    assert [e["pointer"] for e in body["errors"]] == ["/url"]
    assert "secret" not in body
    assert await world.counts() == before


async def test_the_allowance_is_what_lets_loopback_through(world, strict_api):
    """The control for the refusals: the same URL is accepted where 127.0.0.0/8 is allowed."""
    headers = await world.headers("N07")
    refused = await strict_api.post("/v1/subscriptions", json={"url": HOOK}, headers=headers)
    assert_problem(refused, 422)
    assert (await subscribe(world, url=HOOK))["status"] == "active"


async def test_ipv6_loopback_is_reached_where_its_network_is_allowed(world, example, settings):
    """http://[::1]:port/ is refused unless ::1/128 is allowed, and then a webhook arrives."""
    ipv6 = settings.model_copy(update={"webhook_allowed_cidrs": (ip_network("::1/128"),)})
    application = create_app(ipv6)
    headers = await world.headers("N07")
    with running_receiver(host="::1") as receiver:
        assert receiver.url.startswith("http://[::1]:")
        refused = await world.api.post(
            "/v1/subscriptions", json={"url": receiver.url}, headers=headers
        )
        assert_problem(refused, 422)  # 127.0.0.0/8 allowed: not IPv6's loopback
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
                created = await client.post(
                    "/v1/subscriptions", json={"url": receiver.url}, headers=headers
                )
        assert created.status_code == 201, created.text
        assert (await world.post_notice(example)).status_code == 202
        assert await deliver(world, ipv6) == 1
        (received,) = receiver.wait_for(1)
        assert received.path == "/hooks" and received.answered == 204
        assert received.headers["host"] == receiver.url.removeprefix("http://").removesuffix(
            "/hooks"
        )
    assert await delivery_states(world) == [("delivered", 1, None)]


# --- deleting --------------------------------------------------------------------------------


async def _deliveries(world, notice_id: str) -> dict[str, list[str]]:
    """Per recipient, the subscriptions its deliveries go to (the prison is not shown these)."""
    response = await get(world, f"/v1/release-notices/{notice_id}", "MDI")
    assert response.status_code == 200, response.text
    recipients = response.json()["recipients"]
    assert all("subscription_id" not in d for r in recipients for d in r["deliveries"])
    rows = await world.sql(
        "SELECT o.code, d.subscription_id FROM delivery d JOIN message m ON m.id = d.message_id "
        "JOIN organisation o ON o.id = m.recipient_organisation_id WHERE m.notice_id = :n",
        n=uuid.UUID(notice_id).hex
        if world.sessions.kw["bind"].dialect.name == "sqlite"
        else notice_id,
    )
    found: dict[str, list[str]] = {r["organisation_code"]: [] for r in recipients}
    for code, subscription_id in rows:
        found[code].append(str(uuid.UUID(str(subscription_id))))
    return found


async def test_a_deleted_subscription_gets_no_more_deliveries(world, example):
    kept = await subscribe(world, url="http://127.0.0.1:9/kept")
    deleted = await subscribe(world, url="http://127.0.0.1:9/deleted")
    headers = await world.headers("N07")

    response = await world.api.delete(f"/v1/subscriptions/{deleted['id']}", headers=headers)
    assert response.status_code == 204 and response.content == b""
    shown = await get(world, f"/v1/subscriptions/{deleted['id']}")
    assert shown.json()["status"] == "deleted"
    assert (await get(world, f"/v1/subscriptions/{kept['id']}")).json()["status"] == "active"
    again = await world.api.delete(f"/v1/subscriptions/{deleted['id']}", headers=headers)
    assert again.status_code == 204

    before = (await world.counts())["delivery"]
    posted = await world.post_notice(example)
    assert posted.status_code == 202, posted.text
    assert (await world.counts())["delivery"] == before + 1
    assert await _deliveries(world, posted.json()["id"]) == {"N07": [kept["id"]], "SMS-LEEDS": []}
    rows = await world.sql(
        "SELECT count(*) FROM delivery d JOIN subscription s ON s.id = d.subscription_id "
        "WHERE s.status = 'deleted'"
    )
    assert rows[0][0] == 0


async def test_deleting_every_subscription_stops_all_deliveries(world, example):
    created = await subscribe(world)
    headers = await world.headers("N07")
    assert (
        await world.api.delete(f"/v1/subscriptions/{created['id']}", headers=headers)
    ).status_code == 204
    before = await world.counts()
    posted = await world.post_notice(example)
    assert posted.status_code == 202, posted.text
    after = await world.counts()
    assert after["delivery"] == before["delivery"] == 0
    assert after["message"] == before["message"] + 2  # the inbox still gets the message


# --- disabling, re-enabling, deleting --------------------------------------------------------


async def change(world, subscription_id: str, code: str = "N07", **body: Any) -> httpx.Response:
    return await world.api.patch(
        f"/v1/subscriptions/{subscription_id}", json=body, headers=await world.headers(code)
    )


async def deliver(world, settings, at: datetime | None = None) -> int:
    async with http_client() as client:
        return await run_once(
            world.sessions,
            client,
            settings,
            data_keys=world.data_keys,
            clock=lambda: at or datetime.now(UTC),
        )


async def delivery_states(world) -> list[tuple[str, int, str | None]]:
    rows = await world.sql("SELECT state, attempts, last_error FROM delivery ORDER BY created_at")
    return [tuple(r) for r in rows]


async def test_re_enabling_lets_the_deliveries_that_waited_go_out(world, example, settings):
    with running_receiver(script=[503]) as receiver:
        created = await subscribe(world, url=receiver.url)
        message_id = (await world.post_notice(example)).json()["recipients"][0]["message_id"]
        assert await deliver(world, settings) == 1  # failed: retried in 5 s
        disabled = await change(world, created["id"], status="disabled")
        assert disabled.status_code == 200, disabled.text
        assert disabled.json()["status"] == "disabled"
        assert disabled.json()["disabled_reason"] == "recipient"
        assert disabled.json()["disabled_at"] is not None
        assert await deliver(world, settings, datetime.now(UTC) + timedelta(hours=1)) == 0
        assert await delivery_states(world) == [("pending", 1, "non-2xx response")]

        enabled = await change(world, created["id"], status="active")
        assert enabled.status_code == 200, enabled.text
        assert (enabled.json()["status"], enabled.json()["disabled_reason"]) == ("active", None)
        assert await deliver(world, settings) == 1  # at once, not in 5 s
        requests = receiver.wait_for(2)
    assert [r.headers["webhook-id"] for r in requests] == [message_id] * 2
    assert await delivery_states(world) == [("delivered", 2, None)]
    actions = await world.sql(
        "SELECT action FROM audit_entry WHERE action LIKE 'subscription.%' ORDER BY id"
    )
    assert [a for (a,) in actions] == [
        "subscription.created",
        "subscription.disabled",
        "subscription.enabled",
    ]


async def test_a_subscription_whose_endpoint_was_gone_can_be_re_enabled(world):
    created = await subscribe(world)
    async with world.sessions() as session, session.begin():  # as the worker leaves it on a 410
        await session.execute(
            update(Subscription)
            .where(Subscription.id == uuid.UUID(created["id"]))
            .values(status="disabled", disabled_reason="gone", disabled_at=datetime.now(UTC))
        )
    shown = (await get(world, f"/v1/subscriptions/{created['id']}")).json()
    assert (shown["status"], shown["disabled_reason"]) == ("disabled", "gone")
    # Disabling it again changes nothing: it stays disabled for the reason it was.
    assert (await change(world, created["id"], status="disabled")).json() == shown
    enabled = (await change(world, created["id"], status="active")).json()
    assert (enabled["status"], enabled["disabled_reason"], enabled["disabled_at"]) == (
        "active",
        None,
        None,
    )
    [(details,)] = await world.sql(
        "SELECT details FROM audit_entry WHERE action = 'subscription.enabled'"
    )
    details = json.loads(details) if isinstance(details, str) else details
    assert details == {"subscription_id": created["id"], "was_disabled_by": "gone", "made_due": 0}


async def test_a_new_url_is_vetted_as_at_creation_and_then_used(
    world, strict_api, example, settings
):
    created = await subscribe(world, url="http://127.0.0.1:9/old")
    headers = await world.headers("N07")
    before = await world.counts()
    refused = await strict_api.patch(
        f"/v1/subscriptions/{created['id']}", json={"url": HOOK}, headers=headers
    )
    assert [e["pointer"] for e in assert_problem(refused, 422)["errors"]] == ["/url"]
    assert await world.counts() == before

    with running_receiver() as receiver:
        await world.post_notice(example)
        moved = await change(world, created["id"], url=receiver.url)
        assert moved.status_code == 200, moved.text
        assert (moved.json()["url"], moved.json()["status"]) == (receiver.url, "active")
        assert await deliver(world, settings) == 1
        assert [r.path for r in receiver.wait_for(1)] == ["/hooks"]


@pytest.mark.parametrize(
    "body",
    [{}, {"status": "deleted"}, {"status": "gone"}, {"status": "active", "secret": "x"}],
)
async def test_a_change_that_is_not_one_is_refused(world, body):
    created = await subscribe(world)
    await world.headers("AUDIT")
    before = await world.counts()
    assert_problem(await change(world, created["id"], **body), 422)
    assert_problem(await change(world, created["id"], "AUDIT", status="active"), 403)
    assert await world.counts() == before


async def test_deleting_kills_the_pending_deliveries_and_is_final(world, example):
    created = await subscribe(world)
    await world.post_notice(example)
    headers = await world.headers("N07")
    assert (
        await world.api.delete(f"/v1/subscriptions/{created['id']}", headers=headers)
    ).status_code == 204
    shown = (await get(world, f"/v1/subscriptions/{created['id']}")).json()
    assert shown["status"] == "deleted" and shown["disabled_at"] is not None
    assert await delivery_states(world) == [("dead", 0, "subscription deleted")]
    [(details,)] = await world.sql(
        "SELECT details FROM audit_entry WHERE action = 'subscription.deleted'"
    )
    details = json.loads(details) if isinstance(details, str) else details
    assert details == {"subscription_id": created["id"], "dead": 1}

    before = await world.counts()
    for status in ("active", "disabled"):
        assert_problem(await change(world, created["id"], status=status), 409)
    rotation = await world.api.post(
        f"/v1/subscriptions/{created['id']}/secret-rotation", headers=headers
    )
    assert_problem(rotation, 409)
    again = await world.api.delete(f"/v1/subscriptions/{created['id']}", headers=headers)
    assert again.status_code == 204
    assert await world.counts() == before
