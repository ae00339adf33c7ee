"""Numbering the inbox after commit (app/messages/sequencer.py), on both databases: intake
stores messages unnumbered, and the sequencer gives each recipient's messages gap-free numbers in
the order their transactions committed, however many sequencers run at once. The inbox lists
numbered messages only, a message is not found until numbered, and no delivery of it is claimed
before. Real transactions throughout: held open and committed in the order a test chooses.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from app.access.identity import Caller
from app.messages import leases, sequencer
from app.notices import intake
from app.notices.document import ReleaseNotice
from app.storage.db import is_sqlite, make_sessionmaker
from app.storage.log_tables import AuditEntry
from tests.conftest import number_messages

RECIPIENTS = ("N07", "SMS-LEEDS")


def prison(world) -> Caller:
    return Caller("test-MDI", world.ids["MDI"], "MDI", "prison", frozenset())


def person(example, n: int) -> ReleaseNotice:
    """The example notice about a person of its own: notices about different people wait on
    nothing of each other's."""
    body = copy.deepcopy(example)
    body["person"]["noms_number"] = f"C{n:04d}DE"
    return ReleaseNotice.model_validate(body)


async def numbers(world, code: str) -> dict[str, int | None]:
    """Each of the recipient's messages, by notice id, with its number (None: unnumbered)."""
    rows = await world.sql(
        "SELECT m.notice_id, m.sequence FROM message m JOIN organisation o"
        " ON o.id = m.recipient_organisation_id WHERE o.code = :code",
        code=code,
    )
    return {str(uuid.UUID(str(notice_id))): number for notice_id, number in rows}


async def inbox(world, code: str, after: int = 0) -> list[int]:
    response = await world.api.get(
        "/v1/messages", params={"after": after, "limit": 200}, headers=await world.headers(code)
    )
    assert response.status_code == 200, response.text
    return [m["sequence"] for m in response.json()["items"]]


async def accept(session, world, app, body: ReleaseNotice, now: datetime) -> str:
    accepted = await intake.accept_notice(
        session, body, caller=prison(world), signing=app.state.signing, now=now
    )
    return str(accepted.notice.id)


@pytest.fixture
def postgresql_only(database_url: str) -> None:
    if is_sqlite(database_url):
        pytest.skip("a transaction held open on SQLite locks every other writer out")


@pytest.mark.usefixtures("postgresql_only")
async def test_writers_committing_out_of_order_are_numbered_in_commit_order(world, app, example):
    """The first transaction to begin (its messages made first, the earlier time and, maybe,
    the lower id) commits last: its messages are numbered after the other's, never before, and
    never in a gap left open for them."""
    earlier = datetime.now(UTC)
    async with world.sessions() as first, world.sessions() as second:
        await first.begin()
        await second.begin()
        slow = await accept(first, world, app, person(example, 1), earlier)
        fast = await accept(second, world, app, person(example, 2), earlier + timedelta(1e-3))
        await second.commit()
        assert await number_messages(world.sessions) == 2  # the committed one's two recipients
        await first.commit()
        assert await number_messages(world.sessions) == 2
    for code in RECIPIENTS:
        assert await numbers(world, code) == {fast: 1, slow: 2}, code
        assert await inbox(world, code) == [1, 2]


async def test_a_message_made_earlier_but_committed_later_is_numbered_later(world, app, example):
    """The same on SQLite, where writers take turns: what a message's time says is not its
    place in the inbox; its commit is."""
    now = datetime.now(UTC)
    async with world.sessions() as session, session.begin():
        later = await accept(session, world, app, person(example, 1), now)
    assert await number_messages(world.sessions) == 2
    async with world.sessions() as session, session.begin():
        made_earlier = await accept(session, world, app, person(example, 2), now - timedelta(1))
    assert await number_messages(world.sessions) == 2
    for code in RECIPIENTS:
        assert await numbers(world, code) == {later: 1, made_earlier: 2}, code


async def test_the_inbox_shows_numbered_messages_only_and_never_a_gap(
    world, example, unnumbered_api
):
    headers, reader = await world.headers("MDI"), await world.headers("N07")
    await world.headers("SMS-LEEDS")  # tokens first: world.api numbers after every POST
    first = await unnumbered_api.post("/v1/release-notices", json=example, headers=headers)
    assert first.status_code == 202, first.text
    sent = {r["organisation_code"]: r["message_id"] for r in first.json()["recipients"]}
    # Stored, unnumbered: not in the inbox yet, not found by id, not acknowledgeable.
    assert await inbox(world, "N07") == []
    found = await unnumbered_api.get(f"/v1/messages/{sent['N07']}", headers=reader)
    assert found.status_code == 404, found.text
    acknowledged = await unnumbered_api.post(
        f"/v1/messages/{sent['N07']}/acknowledgements", json={"status": "received"}, headers=reader
    )
    assert acknowledged.status_code == 404, acknowledged.text
    assert await number_messages(world.sessions) == 2
    found = await unnumbered_api.get(f"/v1/messages/{sent['N07']}", headers=reader)
    assert (found.status_code, found.json()["sequence"]) == (200, 1)
    # Two more, unnumbered: a reader after 1 sees nothing yet, not a gap; then both, in order.
    for _ in range(2):
        assert (
            await unnumbered_api.post("/v1/release-notices", json=example, headers=headers)
        ).is_success
    assert await inbox(world, "N07") == [1]
    assert await inbox(world, "N07", after=1) == []
    assert await number_messages(world.sessions) == 4
    assert await inbox(world, "N07", after=1) == [2, 3]
    assert await inbox(world, "SMS-LEEDS") == [1, 2, 3]


async def test_a_delivery_waits_for_its_message_number(world, example, unnumbered_api):
    for code in RECIPIENTS:
        response = await world.api.post(
            "/v1/subscriptions",
            json={"url": f"http://127.0.0.1:9/{code}"},
            headers=await world.headers(code),
        )
        assert response.status_code == 201, response.text
    headers = await world.headers("MDI")
    response = await unnumbered_api.post("/v1/release-notices", json=example, headers=headers)
    assert response.status_code == 202, response.text
    lease, at = timedelta(minutes=5), datetime.now(UTC) + timedelta(seconds=1)

    async def claim() -> list[leases.Claimed]:
        async with world.sessions() as session, session.begin():
            return await leases.claim_due(session, world.data_keys, now=at, limit=10, lease=lease)

    assert await claim() == []  # queued, due, and not claimed: its message has no number yet
    [(pending,)] = await world.sql("SELECT count(*) FROM delivery WHERE state = 'pending'")
    assert pending == 2
    assert await number_messages(world.sessions) == 2
    claimed = await claim()
    assert sorted((c.recipient_organisation_id, c.sequence) for c in claimed) == sorted(
        (world.ids[code], 1) for code in RECIPIENTS
    )


async def test_sequencers_at_once_neither_repeat_nor_skip_a_number(world, example, unnumbered_api):
    """Notices posted while several sequencers run, each in its own session (on PostgreSQL, its
    own connection): every message numbered once, each inbox 1..n; and a reader polling the
    inbox meanwhile only ever sees a gap-free prefix of it."""
    notices, sequencers = 12, 4
    headers = await world.headers("MDI")
    await world.headers(
        "N07"
    )  # its token now: a token's POST numbers what is waiting (the api fixture)
    seen: list[list[int]] = []
    posting = True

    async def post(n: int) -> None:
        body = copy.deepcopy(example)
        body["person"]["noms_number"] = f"D{n:04d}EF"
        response = await unnumbered_api.post("/v1/release-notices", json=body, headers=headers)
        assert response.status_code == 202, response.text

    async def number_meanwhile() -> int:
        numbered = 0
        while posting:
            numbered += await number_messages(world.sessions)
            await asyncio.sleep(0)
        return numbered

    async def read_meanwhile() -> None:
        while posting:
            seen.append(await inbox(world, "N07"))
            await asyncio.sleep(0)

    async def post_all() -> None:
        nonlocal posting
        try:
            await asyncio.gather(*(post(n) for n in range(notices)))
        finally:
            posting = False

    results = await asyncio.gather(
        post_all(), read_meanwhile(), *(number_meanwhile() for _ in range(sequencers))
    )
    numbered = sum(results[2:]) + await number_messages(world.sessions)
    assert numbered == notices * len(RECIPIENTS)
    for code in RECIPIENTS:
        assert sorted((await numbers(world, code)).values()) == list(range(1, notices + 1)), code
        [(last,)] = await world.sql(
            "SELECT message_sequence FROM organisation WHERE code = :code", code=code
        )
        assert last == notices, code
    assert all(found == list(range(1, len(found) + 1)) for found in seen), seen


@pytest.mark.usefixtures("postgresql_only")
async def test_a_second_sequencer_waits_for_the_first_then_numbers_what_committed_meanwhile(
    world, app, example, database_url
):
    """On PostgreSQL, over separate engines (separate connections, as separate worker
    processes have): while one sequencer's transaction is open another gives out no number,
    but waits; once the first commits, it numbers what committed after the first had read."""
    async with world.sessions() as session, session.begin():
        await accept(session, world, app, person(example, 1), datetime.now(UTC))
    engine = create_async_engine(database_url)
    try:
        other = make_sessionmaker(engine)

        async def second() -> int:
            async with other() as session, session.begin():
                return await sequencer.number(session)

        async with world.sessions() as holding, holding.begin():
            assert await sequencer.number(holding) == 2
            async with world.sessions() as session, session.begin():  # after the first read
                await accept(session, world, app, person(example, 2), datetime.now(UTC))
            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.5)
            assert not waiting.done()  # it waits for the lock: no number given meanwhile
        assert await waiting == 2  # the notice committed while the first held the lock
    finally:
        await engine.dispose()
    for code in RECIPIENTS:
        assert sorted((await numbers(world, code)).values()) == [1, 2], code


async def test_a_rolled_back_sequencer_gives_out_nothing(world, app, example):
    async with world.sessions() as session, session.begin():
        notice = await accept(session, world, app, person(example, 1), datetime.now(UTC))
    async with world.sessions() as session:
        await session.begin()
        assert await sequencer.number(session) == 2
        await session.rollback()
    assert await numbers(world, "N07") == {notice: None}
    assert await number_messages(world.sessions) == 2
    assert await numbers(world, "N07") == {notice: 1}


async def test_the_signed_entry_of_a_message_carries_no_number(world, example):
    response = await world.post_notice(example)
    assert response.status_code == 202, response.text
    async with world.sessions() as session:
        signed = list(
            await session.scalars(
                select(AuditEntry.details).where(
                    AuditEntry.action == "message.signed",
                    AuditEntry.notice_id == uuid.UUID(response.json()["id"]),
                )
            )
        )
    assert len(signed) == 2
    assert all("sequence" not in details and details["jws_sha256"] for details in signed), signed
