"""A subscription's signing secret rotated with an overlap: shown once, the old one kept signing
until the overlap ends, and which secrets sign at any moment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.messages.outbox import signing_secrets
from app.storage.models import Subscription
from app.worker.loop import http_client, run_once
from tests.helpers.problems import assert_problem
from tests.helpers.receiver import running_receiver
from tests.helpers.subscriptions import get, subscribe


async def rotate(world, subscription_id: str, code: str = "N07", **body: object):
    return await world.api.post(
        f"/v1/subscriptions/{subscription_id}/secret-rotation",
        json=body if body else None,
        headers=await world.headers(code),
    )


async def stored(world, subscription_id: str) -> Subscription:
    async with world.sessions() as session:
        return await session.scalar(
            select(Subscription).where(Subscription.id == uuid.UUID(subscription_id))
        )


def about(at: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(at) - expected) < timedelta(seconds=30)


async def test_a_rotation_shows_the_new_secret_once_and_keeps_the_old_one_for_the_overlap(world):
    created = await subscribe(world)
    first = await rotate(world, created["id"], overlap_seconds=3600)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    rotated = first.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert about(rotated["previous_secret_expires_at"], datetime.now(UTC) + timedelta(hours=1))
    row = await stored(world, created["id"])
    assert (row.secret, row.previous_secret) == (rotated["secret"], created["secret"])

    shown = await get(world, f"/v1/subscriptions/{created['id']}")
    assert shown.json()["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    assert "whsec_" not in shown.text

    # A second rotation within the overlap: the then-current secret becomes the previous one.
    second = (await rotate(world, created["id"])).json()
    assert about(second["previous_secret_expires_at"], datetime.now(UTC) + timedelta(days=1))
    row = await stored(world, created["id"])
    assert (row.secret, row.previous_secret) == (second["secret"], rotated["secret"])

    # No overlap: the old secret stops signing at once.
    third = (await rotate(world, created["id"], overlap_seconds=0)).json()
    assert third["previous_secret_expires_at"] is None
    row = await stored(world, created["id"])
    assert (row.secret, row.previous_secret, row.previous_secret_expires_at) == (
        third["secret"],
        None,
        None,
    )
    actions = await world.sql(
        "SELECT count(*) FROM audit_entry WHERE action = 'subscription.secret_rotated'"
    )
    assert actions[0][0] == 3


async def test_deliveries_are_signed_with_the_new_secret(world, example, settings):
    with running_receiver() as receiver:
        created = await subscribe(world, url=receiver.url)
        secret = (await rotate(world, created["id"])).json()["secret"]
        await world.post_notice(example)
        async with http_client() as client:
            assert await run_once(world.sessions, client, settings, data_keys=world.data_keys) == 1
        [request] = receiver.wait_for(1)
    Webhook(secret).verify(request.body, request.headers)


@pytest.mark.parametrize(
    "body",
    [
        {"overlap_seconds": -1},
        {"overlap_seconds": 604801},
        {"overlap_seconds": "a day"},
        {"overlap": 60},
    ],
)
async def test_an_overlap_out_of_bounds_is_refused_and_nothing_changes(world, body):
    created = await subscribe(world)
    await world.headers("AUDIT")
    before = await world.counts()
    body = assert_problem(await rotate(world, created["id"], **body), 422)
    assert "secret" not in body
    assert_problem(await rotate(world, created["id"], "AUDIT"), 403)
    assert await world.counts() == before
    assert (await stored(world, created["id"])).secret == created["secret"]


async def test_the_longest_overlap_is_a_week(world):
    created = await subscribe(world)
    response = await rotate(world, created["id"], overlap_seconds=604800)
    assert response.status_code == 200, response.text
    assert about(response.json()["previous_secret_expires_at"], datetime.now(UTC) + timedelta(7))


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("previous", "expires_at", "signing"),
    [
        (None, None, ("new",)),
        ("old", NOW + timedelta(seconds=1), ("new", "old")),
        ("old", NOW + timedelta(days=7), ("new", "old")),
        ("old", NOW, ("new",)),  # the overlap ends at expires_at
        ("old", NOW - timedelta(seconds=1), ("new",)),
        ("old", None, ("new",)),  # no end recorded: never signs (fail closed)
        (None, NOW + timedelta(days=1), ("new",)),
    ],
)
def test_signing_secrets_are_the_current_then_the_previous_within_its_overlap(
    previous, expires_at, signing
):
    subscription = Subscription(
        secret="new", previous_secret=previous, previous_secret_expires_at=expires_at
    )
    assert signing_secrets(subscription, NOW) == signing
