"""A withdrawal racing what else touches the person: an intake, a cancellation, a worker's claim.

The person's lock (consents.lock_person) serialises intake, amendment, cancellation, consent
records and withdrawals for one person; a worker's claim and a withdrawal meet on the delivery
rows. Requests race through the ASGI app over its real engine and pool, on both databases (SQLite
lets one writer in at a time, so there they are serialised anyway). The interleavings forced with
a transaction held open are PostgreSQL's only: on SQLite the open writer would lock out the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.consent import withdrawal
from app.messages import leases, outcomes
from app.messages.webhook import send, webhook_body
from app.notices import cancellation, intake
from app.notices.document import ReleaseNotice
from app.storage.db import is_sqlite
from app.worker.loop import http_client
from tests.helpers.consents import (
    CLINICAL,
    NOMS,
    SMS,
    as_json,
    carried,
    consent,
    hexid,
    log,
    post,
    recipients,
    record,
    states,
    withdraw,
    withdrawn,
)
from tests.helpers.messages import inbox, subscribe
from tests.helpers.receiver import running_receiver
from tests.helpers.worker import work

ROUNDS = 5
UNANSWERED = "http://127.0.0.1:9/hooks"  # deliveries queued there stay pending: no worker runs


@pytest.fixture
def postgresql_only(database_url: str) -> None:
    if is_sqlite(database_url):
        pytest.skip("a transaction held open on SQLite locks every other writer out")


def caller(world, code: str) -> Caller:
    kind = {"MDI": "prison", "N07": "probation_provider"}.get(code, "substance_misuse_service")
    return Caller(f"test-{code}", world.ids[code], code, kind, frozenset())


async def relying(world, code: str, scope: str) -> list[dict[str, Any]]:
    """The recipient's disclosure messages that relied on the scope, with what became of them:
    revoked or withdrawn, each delivery's state, and the consent.withdrawn messages naming it."""
    rows = await world.sql(
        "SELECT m.id, m.revoked_at, m.withdrawn_at, d.consents_relied FROM message m"
        " JOIN disclosure d ON d.id = m.disclosure_id"
        " JOIN organisation o ON o.id = m.recipient_organisation_id"
        " WHERE o.code = :code AND m.kind = 'disclosure' ORDER BY m.sequence",
        code=code,
    )
    told = await world.sql("SELECT supersedes_id FROM message WHERE kind = 'consent_withdrawn'")
    deliveries = await states(world)
    return [
        {
            "id": hexid(m),
            "revoked": r is not None,
            "withdrawn": w is not None,
            "deliveries": deliveries.get((code, hexid(m)), []),
            "told": sum(hexid(t) == hexid(m) for (t,) in told),
        }
        for m, r, w, relied in rows
        if scope in as_json(relied)
    ]


def stopped(message: dict[str, Any]) -> bool:
    """Revoked (never sent, nothing left to send), or withdrawn with its recipient told once."""
    if message["revoked"]:
        return not message["withdrawn"] and set(message["deliveries"]) <= {"revoked"}
    return message["withdrawn"] and message["told"] == 1 and "pending" not in message["deliveries"]


# --- through the API, on both databases -----------------------------------------------------------


@pytest.mark.parametrize("subscribed", [False, True], ids=["inbox only", "subscribed"])
async def test_a_withdrawal_racing_an_intake_leaves_nothing_that_relied_on_it_standing(
    world, example, subscribed
):
    if subscribed:
        await subscribe(world, "SMS-LEEDS", UNANSWERED)
    await post(world, example)  # MDI has a part in the person's notices
    await withdrawn(world, (await carried(world, SMS))["id"])
    await world.headers("MDI")  # one client and token, made before the rush
    answers = []
    for n in range(ROUNDS):
        given = await record(world, consent(SMS, "given"))
        racing = [world.post_notice(example), withdraw(world, given["id"])]
        if n % 2:
            racing.reverse()
        responses = await asyncio.gather(*racing)
        assert sorted(r.status_code for r in responses) == [200, 202], [r.text for r in responses]
        answers += [r.json() for r in responses]

    every = await relying(world, "SMS-LEEDS", SMS)
    assert every and all(stopped(m) for m in every), every
    items = {m["id"]: m for m in await inbox(world, "SMS-LEEDS")}
    assert all(items[str(uuid.UUID(m["id"]))]["jws"] is None for m in every)
    # A notice decided after the withdrawal sent the treatment service nothing at all.
    notices = [a for a in answers if "recipients" in a]
    decided = {hexid(recipients(a)["SMS-LEEDS"]) for a in notices if recipients(a)["SMS-LEEDS"]}
    assert decided <= {m["id"] for m in every}
    if subscribed:  # none was ever sent, so each was revoked and nobody is told
        assert all(m["revoked"] for m in every)


@pytest.mark.parametrize("how", ["withdrawn", "refused"])
async def test_an_intake_that_read_the_clock_before_the_consent_ended_decides_without_it(
    world, app, example, how
):
    """The race above, made certain: the notice's request arrives first and reads the clock,
    then the withdrawal (or a refusal, which takes effect as a withdrawal does) takes the
    person's lock and commits; the intake decides after it, and must not rely on the consent."""
    await post(world, example)
    given = await carried(world, SMS)
    arrived = datetime.now(UTC)
    if how == "withdrawn":
        await withdrawn(world, given["id"])
    else:
        await record(world, consent(SMS, "refused"), code="SMS-LEEDS")
    async with world.sessions() as session, session.begin():
        accepted = await intake.accept_notice(
            session,
            ReleaseNotice.model_validate(example),
            caller=caller(world, "MDI"),
            signing=app.state.signing,
            now=arrived,
        )
    sent = {r.organisation.code: r.message_id for r in accepted.recipients}
    every = await relying(world, "SMS-LEEDS", SMS)
    assert all(stopped(m) for m in every), (sent, every)


async def test_a_withdrawal_racing_a_cancellation_sends_nothing_more(world, example):
    await subscribe(world, "N07", UNANSWERED)
    example["consent"][1]["decision"] = "given"  # clinical notes go to probation
    await world.headers("MDI")
    for _ in range(ROUNDS):
        notice = await post(world, example)
        clinical = await record(world, consent(CLINICAL, "given"))
        path = f"/v1/release-notices/{notice['id']}/cancellation"
        cancelling = world.api.post(
            path, json={"reason": "other"}, headers=await world.headers("MDI")
        )
        responses = await asyncio.gather(cancelling, withdraw(world, clinical["id"]))
        assert [r.status_code for r in responses] == [202, 200], [r.text for r in responses]
    # Whatever came first, nothing of a cancelled notice is left to send.
    assert "pending" not in {s for found in (await states(world)).values() for s in found}
    assert all(m["revoked"] for m in await relying(world, "N07", CLINICAL))


# --- interleavings forced with a transaction held open (PostgreSQL) ---------------------------


@contextlib.asynccontextmanager
async def held_open(world) -> AsyncIterator[AsyncSession]:
    """A transaction the test commits when it chooses; rolled back and closed whatever happens,
    so that a failing test never leaves a lock behind for the next one."""
    async with world.sessions() as session:
        await session.begin()
        yield session


async def let_go(session: AsyncSession, task: asyncio.Task) -> Any:
    """Check the task is waiting on what the session holds, commit, and let it finish."""
    await asyncio.sleep(0.5)
    waiting = not task.done()
    await session.commit()
    result = await asyncio.wait_for(task, 10)
    assert waiting, "it did not wait for the transaction held open"
    return result


def now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.usefixtures("postgresql_only")
async def test_a_withdrawal_waits_for_an_intake_in_progress_and_then_stops_what_it_sent(
    world, app, example
):
    await subscribe(world, "SMS-LEEDS", UNANSWERED)
    first = recipients(await post(world, example))
    given = await carried(world, SMS)
    body = ReleaseNotice.model_validate(example)
    async with held_open(world) as session:
        accepted = await intake.accept_notice(
            session, body, caller=caller(world, "MDI"), signing=app.state.signing, now=now()
        )
        second = {r.organisation.code: r.message_id for r in accepted.recipients}
        assert second["SMS-LEEDS"]  # decided while the consent still stood
        task = asyncio.create_task(withdraw(world, given["id"], code="SMS-LEEDS"))
        response = await let_go(session, task)  # it waits on the person's lock
    assert response.status_code == 200, response.text
    assert response.json()["revoked"] == [first["SMS-LEEDS"], str(second["SMS-LEEDS"])]
    assert all(stopped(m) for m in await relying(world, "SMS-LEEDS", SMS))


@pytest.mark.usefixtures("postgresql_only")
async def test_an_intake_waits_for_a_withdrawal_in_progress_and_then_respects_it(
    world, app, example
):
    await post(world, example)
    given = uuid.UUID((await carried(world, SMS))["id"])
    async with held_open(world) as session:
        done = await withdrawal.withdraw_consent(
            session,
            NOMS,
            given,
            caller=caller(world, "SMS-LEEDS"),
            signing=app.state.signing,
            now=now(),
        )
        assert done.effects.notified  # inbox only: the first disclosure is withdrawn
        response = await let_go(session, asyncio.create_task(world.post_notice(example)))
    assert response.status_code == 202, response.text
    assert recipients(response.json())["SMS-LEEDS"] is None  # decided without the consent


@pytest.mark.usefixtures("postgresql_only")
async def test_a_withdrawal_waiting_for_a_cancellation_does_not_disclose_the_notice_again(
    world, app, example
):
    example["consent"][1]["decision"] = "given"
    await subscribe(world, "N07", UNANSWERED)
    accepted = await post(world, example)
    clinical = await carried(world, CLINICAL)
    async with held_open(world) as session:
        await cancellation.cancel_notice(
            session,
            uuid.UUID(accepted["id"]),
            "release_cancelled",
            caller=caller(world, "MDI"),
            signing=app.state.signing,
            now=now(),
        )
        response = await let_go(session, asyncio.create_task(withdraw(world, clinical["id"])))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["revoked"], answer["redisclosed"], answer["notified"]) == ([], [], [])
    [item] = await inbox(world, "N07")  # revoked by the cancellation; nothing after it
    assert (item["id"], item["jws"]) == (recipients(accepted)["N07"], None) and item["revoked_at"]
    assert [d["reason"] for _, d in await log(world, "message.revoked")] == ["cancelled"]


@pytest.mark.usefixtures("postgresql_only")
@pytest.mark.parametrize("committed", [True, False], ids=["claimed before", "claim committing"])
async def test_a_worker_claim_racing_a_withdrawal_never_loses_the_notification(
    world, example, settings, committed
):
    lease = timedelta(minutes=5)
    with running_receiver() as receiver:
        await subscribe(world, "SMS-LEEDS", f"{receiver.url}/sms")
        sent = recipients(await post(world, example))["SMS-LEEDS"]
        given = await carried(world, SMS)
        async with held_open(world) as session:
            claimed = await leases.claim_due(
                session, world.data_keys, now=now(), limit=10, lease=lease
            )
            if committed:
                await session.commit()
            task = asyncio.create_task(withdraw(world, given["id"], code="SMS-LEEDS"))
            if committed:
                response = await asyncio.wait_for(task, 10)
            else:  # the withdrawal waits on the delivery rows the claim holds
                response = await let_go(session, task)
        assert response.status_code == 200, response.text
        answer = response.json()
        [told] = answer["notified"]  # the leased delivery is in flight: it may arrive
        assert answer["revoked"] == []

        [item] = claimed  # the worker goes on to send what it claimed, and settles it
        assert str(item.message_id) == sent
        body = webhook_body(
            kind=item.kind,
            message_id=str(item.message_id),
            notice_id=str(item.notice_id),
            supersedes=None,
            sequence=item.sequence,
            jws=item.jws,
            created_at=item.created_at,
        )
        async with http_client() as client:
            outcome = await send(
                client,
                url=item.url,
                signing_secrets=item.secrets,
                message_id=str(item.message_id),
                body=body,
                allowed=settings.webhook_allowed_cidrs,
            )
        async with world.sessions() as settling, settling.begin():
            assert await outcomes.settle(settling, item, outcome, now=now()) == "delivered"
        assert await work(world, settings) == 1
        events = [json.loads(r.body) for r in receiver.wait_for(2)]
    assert [(e["type"], e["data"]["message_id"]) for e in events] == [
        ("disclosure.created", sent),
        ("consent.withdrawn", told),
    ]
    assert all(stopped(m) for m in await relying(world, "SMS-LEEDS", SMS))


@pytest.mark.usefixtures("postgresql_only")
async def test_a_worker_claiming_during_a_withdrawal_skips_what_it_revokes(world, app, example):
    await subscribe(world, "SMS-LEEDS", UNANSWERED)
    sent = recipients(await post(world, example))["SMS-LEEDS"]
    given = uuid.UUID((await carried(world, SMS))["id"])
    lease = timedelta(minutes=5)
    async with held_open(world) as session:
        done = await withdrawal.withdraw_consent(
            session,
            NOMS,
            given,
            caller=caller(world, "SMS-LEEDS"),
            signing=app.state.signing,
            now=now(),
        )
        assert [str(m) for m in done.effects.revoked] == [sent]
        # The revoking transaction holds the delivery: a worker passes it by, without waiting.
        async with world.sessions() as worker, worker.begin():
            claim = leases.claim_due(worker, world.data_keys, now=now(), limit=10, lease=lease)
            assert await asyncio.wait_for(claim, 5) == []
        await session.commit()
    async with world.sessions() as worker, worker.begin():
        later = now() + timedelta(hours=1)
        found = await leases.claim_due(worker, world.data_keys, now=later, limit=10, lease=lease)
    assert found == []
    assert (await states(world))[("SMS-LEEDS", hexid(sent))] == ["revoked"]
