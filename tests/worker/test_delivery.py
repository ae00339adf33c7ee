"""The delivery worker against a real loopback receiver, on both databases.

Time is the worker's injected clock, so a retry due in five hours is tested without waiting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import socket
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from app.messages import leases, outcomes
from app.messages.retry import JITTER, STANDARD_SCHEDULE, max_attempts
from app.messages.webhook import Outcome, new_secret, send
from app.storage.models import Message
from app.worker.loop import http_client, run_once
from tests.helpers.receiver import running_receiver


async def subscribe(world, code: str, url: str) -> str:
    response = await world.api.post(
        "/v1/subscriptions", json={"url": url}, headers=await world.headers(code)
    )
    assert response.status_code == 201, response.text
    return response.json()["secret"]


async def deliveries(world) -> list[tuple]:
    return await world.sql("SELECT state, attempts, next_attempt_at, leased_until FROM delivery")


async def actions(world) -> list[str]:
    rows = await world.sql(
        "SELECT action FROM audit_entry WHERE action LIKE 'delivery.%' ORDER BY id"
    )
    return [r[0] for r in rows]


async def test_retries_until_the_receiver_answers_with_the_same_id_and_bytes(
    world, example, settings
):
    with running_receiver(script=[500, 503, 502]) as receiver:
        secret = await subscribe(world, "N07", receiver.url)
        assert (await world.post_notice(example)).status_code == 202
        now = datetime.now(UTC)
        async with http_client() as client:
            for attempt in range(4):
                assert (
                    await run_once(
                        world.sessions,
                        client,
                        settings,
                        data_keys=world.data_keys,
                        clock=lambda at=now: at,
                    )
                    == 1
                )
                if attempt == 3:
                    break
                # Not due again until the schedule says so, give or take its jitter.
                wait = STANDARD_SCHEDULE[attempt]
                early = now + wait * (1 - JITTER) - timedelta(milliseconds=1)
                assert (
                    await run_once(
                        world.sessions,
                        client,
                        settings,
                        data_keys=world.data_keys,
                        clock=lambda at=early: at,
                    )
                    == 0
                )
                now += wait * (1 + JITTER)
        received = receiver.wait_for(4)

    assert [r.answered for r in received] == [500, 503, 502, 204]
    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert len({r.body for r in received}) == 1
    Webhook(secret).verify(received[-1].body, received[-1].headers)
    [(state, attempts, _, leased_until)] = await deliveries(world)
    assert (state, attempts, leased_until) == ("delivered", 4, None)
    assert await actions(world) == ["delivery.queued"] + ["delivery.failed"] * 3 + [
        "delivery.succeeded"
    ]
    assert len(await world.sql("SELECT id FROM delivery_attempt")) == 4


async def test_gives_up_into_dead_only_when_the_schedule_is_spent(world, example, settings):
    with running_receiver(then=500) as receiver:
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        now = datetime.now(UTC)
        async with http_client() as client:
            for attempt in range(max_attempts()):
                [(state, *_)] = await deliveries(world)
                assert state == "pending", f"dead before attempt {attempt + 1}"
                assert (
                    await run_once(
                        world.sessions,
                        client,
                        settings,
                        data_keys=world.data_keys,
                        clock=lambda at=now: at,
                    )
                    == 1
                )
                now += timedelta(days=2)
            assert (
                await run_once(
                    world.sessions,
                    client,
                    settings,
                    data_keys=world.data_keys,
                    clock=lambda at=now: at,
                )
                == 0
            )
        assert len(receiver.requests) == max_attempts()
    [(state, attempts, *_)] = await deliveries(world)
    assert (state, attempts) == ("dead", max_attempts())
    assert (await actions(world))[-1] == "delivery.dead"


async def test_a_redirect_is_a_failure_and_is_not_followed(world, example, settings):
    with running_receiver(script=[302]) as receiver:
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        async with http_client() as client:
            await run_once(world.sessions, client, settings, data_keys=world.data_keys)
        assert len(receiver.requests) == 1
    [(state, attempts, *_)] = await deliveries(world)
    assert (state, attempts) == ("pending", 1)


async def test_an_address_no_longer_allowed_is_refused_at_send_time(world, example, settings):
    with running_receiver() as receiver:
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        strict = settings.model_copy(update={"webhook_allowed_cidrs": ()})
        async with http_client() as client:
            assert await run_once(world.sessions, client, strict, data_keys=world.data_keys) == 1
        assert receiver.requests == []
    [(error,)] = await world.sql("SELECT error FROM delivery_attempt")
    assert error.startswith("refused")


async def test_both_recipients_are_delivered_and_a_disabled_subscription_is_not(
    world, example, settings
):
    with running_receiver() as receiver:
        await subscribe(world, "SMS-LEEDS", f"{receiver.url}/sms")
        response = await world.api.post(
            "/v1/subscriptions",
            json={"url": f"{receiver.url}/n07"},
            headers=await world.headers("N07"),
        )
        n07_subscription = response.json()["id"]
        await world.api.delete(
            f"/v1/subscriptions/{n07_subscription}", headers=await world.headers("N07")
        )
        await world.post_notice(example)
        async with http_client() as client:
            assert await run_once(world.sessions, client, settings, data_keys=world.data_keys) == 1
        assert [r.path for r in receiver.wait_for(1)] == ["/hooks/sms"]


async def test_a_lease_keeps_other_workers_off_until_it_expires(world, example, settings):
    await subscribe(world, "N07", "http://127.0.0.1:9/unused")
    await subscribe(world, "SMS-LEEDS", "http://127.0.0.1:9/unused")
    await world.post_notice(example)
    now, lease = datetime.now(UTC), timedelta(seconds=60)

    async def claim(at: datetime) -> set:
        async with world.sessions() as session, session.begin():
            return {
                c.delivery_id
                for c in await leases.claim_due(
                    session, world.data_keys, now=at, limit=1, lease=lease
                )
            }

    first, second = await claim(now), await claim(now)
    assert len(first) == len(second) == 1 and first != second
    assert await claim(now + timedelta(seconds=30)) == set()
    # The first worker died without settling: after the lease, its delivery is due again.
    assert await claim(now + lease + timedelta(seconds=1)) in (first, second)


async def test_the_embedded_worker_delivers_without_being_asked(settings, example, world):
    from app.main import create_app

    with running_receiver() as receiver:
        await subscribe(world, "N07", receiver.url)
        application = create_app(settings, embedded_worker=True)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url=world.api.base_url) as api:
                response = await api.post(
                    "/v1/release-notices", json=example, headers=await world.headers("MDI")
                )
                assert response.status_code == 202
                [request] = await asyncio.to_thread(receiver.wait_for, 1)
    assert request.headers["webhook-id"] == response.json()["recipients"][0]["message_id"]


async def test_the_worker_process_delivers_and_stops_cleanly_on_sigterm(
    world, example, settings, tmp_path
):
    with running_receiver() as receiver:
        await subscribe(world, "N07", receiver.url)
        await world.post_notice(example)
        env = {
            **os.environ,
            "EXCHANGE_DATABASE_URL": settings.database_url,
            "EXCHANGE_DATA_DIR": str(settings.data_dir),  # its data keys open the payloads
            "EXCHANGE_WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8",
            "EXCHANGE_WORKER_POLL_SECONDS": "0.1",
        }
        exchange = str(Path(sys.executable).parent / "exchange")
        process = await asyncio.create_subprocess_exec(
            exchange, "worker", env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            await asyncio.to_thread(receiver.wait_for, 1, 30)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode == 0, stderr.decode()
    [(state, attempts, *_)] = await deliveries(world)
    assert (state, attempts) == ("delivered", 1)


@pytest.mark.parametrize(("fresh_delivers", "state"), [(True, "delivered"), (False, "pending")])
async def test_a_worker_whose_lease_ran_out_cannot_overwrite_a_newer_outcome(
    world, example, fresh_delivers, state
):
    await subscribe(world, "N07", "http://127.0.0.1:9/unused")
    await world.post_notice(example)
    now, lease = datetime.now(UTC), timedelta(seconds=60)

    async def claim(at: datetime) -> leases.Claimed:
        async with world.sessions() as session, session.begin():
            [claimed] = await leases.claim_due(
                session, world.data_keys, now=at, limit=1, lease=lease
            )
            return claimed

    async def settle(claimed: leases.Claimed, delivered: bool, at: datetime) -> str | None:
        outcome = Outcome(delivered, 204 if delivered else 500, 5)
        async with world.sessions() as session, session.begin():
            return await outcomes.settle(session, claimed, outcome, now=at)

    slow = await claim(now)  # worker A: its send outlives its lease
    later = now + lease + timedelta(seconds=1)
    fresh = await claim(later)  # worker B takes the delivery over
    assert await settle(fresh, fresh_delivers, later) == state
    assert await settle(slow, not fresh_delivers, later + timedelta(seconds=1)) is None
    [(recorded, attempts, _, leased_until)] = await deliveries(world)
    assert (recorded, attempts, leased_until) == (state, 1, None)
    outcome = "delivery.succeeded" if fresh_delivers else "delivery.failed"
    assert await actions(world) == ["delivery.queued", outcome]
    assert len(await world.sql("SELECT id FROM delivery_attempt")) == 1


LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


async def test_the_connection_goes_to_the_vetted_address_not_a_second_dns_answer(monkeypatch):
    """DNS rebinding: the first answer passes the check, a second one would point elsewhere."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2"])  # nothing listens on 127.0.0.2

    def rebinding_dns(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    with running_receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", "rebind.test")
        async with http_client() as client:
            outcome = await send(
                client,
                url=url,
                signing_secrets=[new_secret()],
                message_id="m1",
                body=b"{}",
                allowed=LOOPBACK,
            )
        [request] = receiver.requests
    assert outcome.delivered
    assert request.headers["host"] == url.split("/")[2]


async def test_a_receiver_that_stalls_is_cut_off_at_the_deadline():
    with running_receiver(delay=3) as receiver:
        async with http_client() as client:
            outcome = await send(
                client,
                url=receiver.url,
                signing_secrets=[new_secret()],
                message_id="m1",
                body=b"{}",
                allowed=LOOPBACK,
                deadline_seconds=0.3,
            )
    assert (outcome.delivered, outcome.error) == (False, "timed out")


async def test_a_payload_that_cannot_be_opened_holds_up_only_its_own_delivery(
    world, example, settings
):
    """A worker without the data key a message was sealed with sends the others, keeps that
    delivery leased (it is sent once the key is back), and never sends anything it cannot open."""
    with running_receiver() as receiver:
        await subscribe(world, "N07", receiver.url)
        first = (await world.post_notice(example)).json()["recipients"][0]["message_id"]
        second = (await world.post_notice(example)).json()["recipients"][0]["message_id"]
        async with world.sessions() as session, session.begin():
            await session.execute(
                update(Message).where(Message.id == uuid.UUID(first)).values(jws_key_id="lost")
            )
        async with http_client() as client:
            await run_once(world.sessions, client, settings, data_keys=world.data_keys)
        [request] = receiver.wait_for(1)
        assert request.headers["webhook-id"] == second
        rows = await world.sql("SELECT state, attempts, leased_until FROM delivery")
        assert sorted((state, attempts) for state, attempts, _ in rows) == [
            ("delivered", 1),
            ("pending", 0),
        ]
        assert [leased for state, _, leased in rows if state == "pending"] != [None]
