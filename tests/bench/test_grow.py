"""bench/grow.py: clones of stored notices keep every constraint, and the exchange still works.

The grower is PostgreSQL's SQL: on SQLite these tests skip, saying so.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.consent.decisions import body_of
from app.storage.models import StoredNotice
from app.worker.loop import http_client, run_once
from bench.grow import grow
from tests.conftest import number_messages
from tests.helpers.receiver import running_receiver

NOTICES = "/v1/release-notices"
DAYS_TO_BOOKED = timedelta(days=2)  # from the release to the appointment booked in traffic()


@pytest.fixture
def postgres_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("bench.grow clones rows in PostgreSQL's SQL only")


def about(example: dict[str, Any], noms_number: str) -> dict[str, Any]:
    body = copy.deepcopy(example)
    body["person"]["noms_number"] = noms_number
    return body


async def post(world, path: str, body: Any, code: str = "MDI", **headers: str) -> dict[str, Any]:
    response = await world.api.post(
        path, json=body, headers={**await world.headers(code), **headers}
    )
    assert response.status_code in (201, 202), response.text
    return response.json()


async def traffic(world, example, settings) -> None:
    """Four notices about three people: one amended, one cancelled, one acknowledged with a
    note and an appointment booked; N07's deliveries delivered to a receiver, SMS-LEEDS's left
    pending."""
    with running_receiver() as receiver:
        await post(world, "/v1/subscriptions", {"url": receiver.url}, "N07")
        await post(world, "/v1/subscriptions", {"url": "http://127.0.0.1:9/hook"}, "SMS-LEEDS")
        first = await post(world, NOTICES, about(example, "A1111AA"), **{"idempotency-key": "k1"})
        amended = about(example, "A1111AA")
        amended["wider_needs"]["housing"] = False
        await post(world, f"{NOTICES}/{first['id']}/amendments", amended)
        second = await post(world, NOTICES, about(example, "B2222BB"))
        await post(world, f"{NOTICES}/{second['id']}/cancellation", {"reason": "entered_in_error"})
        third = await post(world, NOTICES, about(example, "C3333CC"))
        async with http_client() as client:
            while await run_once(world.sessions, client, settings, data_keys=world.data_keys):
                pass
    message = next(r["message_id"] for r in third["recipients"] if r["organisation_code"] == "N07")
    await post(
        world,
        f"/v1/messages/{message}/acknowledgements",
        {"status": "received", "note": "Seen by the duty officer."},
        "N07",
    )
    released = date.fromisoformat(example["release"]["release_date"])
    booked = {"status": "appointment_booked", "appointment_date": str(released + DAYS_TO_BOOKED)}
    await post(world, f"/v1/messages/{message}/acknowledgements", booked, "N07")


async def one(world, statement: str) -> Any:
    return (await world.sql(statement))[0][0]


async def test_clones_keep_every_constraint_and_intake_goes_on(
    postgres_only, world, example, settings
):
    await traffic(world, example, settings)
    before = await world.counts()
    people = await one(world, "SELECT count(DISTINCT person_ref) FROM release_notice")
    assert before["release_notice"] == 4 and people == 3

    stored = await grow(settings.database_url, 12, data_keys_dir=settings.sealing_keys_dir)

    after = await world.counts()
    assert stored == after["release_notice"] == 12
    assert before["consent_carrier"] > before["consent"]  # the amendment carries the first's
    for table in (
        "disclosure",
        "message",
        "delivery",
        "consent",
        "consent_carrier",
        "acknowledgement",
    ):
        assert after[table] == 3 * before[table], table
    assert await one(world, "SELECT count(DISTINCT person_ref) FROM release_notice") == 9
    assert await one(world, "SELECT count(DISTINCT person_ref) FROM consent") == 9
    # every reference stays within the clone's own person
    assert (
        await world.sql(
            "SELECT n.id FROM release_notice n JOIN release_notice s ON s.id = n.series_id"
            " LEFT JOIN release_notice e ON e.id = n.supersedes_id"
            " WHERE s.person_ref <> n.person_ref OR e.person_ref <> n.person_ref"
            " OR (n.version = 1 AND n.series_id <> n.id)"
        )
        == []
    )
    assert (
        await world.sql(
            "SELECT m.id FROM message m JOIN release_notice n ON n.id = m.notice_id"
            " JOIN message e ON e.id = m.supersedes_id"
            " JOIN release_notice en ON en.id = e.notice_id WHERE en.person_ref <> n.person_ref"
        )
        == []
    )
    assert (
        await world.sql(
            "SELECT d.id FROM disclosure d JOIN message m ON m.disclosure_id = d.id"
            " WHERE m.notice_id <> d.notice_id"
        )
        == []
    )
    assert (
        await world.sql(
            "SELECT c.id FROM consent c JOIN release_notice n ON n.id = c.notice_id"
            " WHERE n.person_ref <> c.person_ref"
        )
        == []
    )
    assert (
        await world.sql(
            "SELECT k.consent_id FROM consent_carrier k JOIN consent c ON c.id = k.consent_id"
            " JOIN release_notice n ON n.id = k.notice_id WHERE n.person_ref <> c.person_ref"
        )
        == []
    )
    # one transaction's messages keep the order they were stored in
    assert await world.sql(
        "SELECT stored_order, count(*) FROM message GROUP BY stored_order ORDER BY 1"
    ) == [
        (order, 3 * n)
        for order, n in await world.sql(
            "SELECT m.stored_order, count(*) FROM message m JOIN release_notice n"
            " ON n.id = m.notice_id WHERE n.person_ref IN ("
            "   SELECT person_ref FROM release_notice ORDER BY received_at DESC LIMIT 4)"
            " GROUP BY m.stored_order ORDER BY 1"
        )
    ]
    # inbox numbers stay gap-free, and the counter names the last
    assert (
        await world.sql(
            "SELECT o.code FROM organisation o JOIN message m ON m.recipient_organisation_id = o.id"
            " GROUP BY o.code, o.message_sequence"
            " HAVING count(*) <> max(m.sequence) OR count(DISTINCT m.sequence) <> count(*)"
            " OR max(m.sequence) <> o.message_sequence"
        )
        == []
    )
    # only the originals' deliveries are still pending; clones were settled
    originals = "SELECT id FROM release_notice ORDER BY received_at DESC LIMIT 4"
    pending = await world.sql(
        "SELECT m.notice_id FROM delivery d JOIN message m ON m.id = d.message_id"
        " WHERE d.state = 'pending'"
    )
    assert {r[0] for r in pending} <= {r[0] for r in await world.sql(originals)}
    assert (
        await one(
            world,
            "SELECT count(*) FROM delivery d WHERE d.state = 'delivered' AND NOT EXISTS (SELECT 1"
            " FROM delivery_attempt a WHERE a.delivery_id = d.id AND a.status_code / 100 = 2)",
        )
        == 0
    )
    # clones spread over the past year; the old ones purged as retention would have
    now = datetime.now(UTC)
    async with world.sessions() as session:
        notices = (await session.scalars(select(StoredNotice))).all()
    assert all(now - timedelta(days=366) < n.received_at <= now for n in notices)
    for notice in notices:
        old = notice.received_at < now - timedelta(days=settings.retention_days)
        assert (notice.purged_at is not None) == old == (notice.body_sealed is None)
        if not old:  # a kept body opens in its own row, and is the original's
            assert body_of(world.data_keys, notice)["person"]["noms_number"] in (
                "A1111AA",
                "B2222BB",
                "C3333CC",
            )
    assert await one(
        world, "SELECT count(*) FROM idempotency_key k JOIN release_notice n ON n.id = k.notice_id"
    ) == await one(
        world,
        "SELECT count(*) FROM release_notice WHERE version = 1 AND purged_at IS NULL"
        " AND status = 'superseded'",
    )
    # a clone's kept idempotency answer names the clone: its id, series and messages
    assert (
        await world.sql(
            "SELECT k.notice_id FROM idempotency_key k JOIN release_notice n ON n.id = k.notice_id"
            " CROSS JOIN LATERAL json_array_elements(k.response -> 'recipients') r"
            " LEFT JOIN message m ON m.id = (r ->> 'message_id')::uuid AND m.notice_id = n.id"
            " WHERE k.response ->> 'id' <> n.id::text"
            " OR k.response ->> 'series_id' <> n.series_id::text"
            " OR k.location <> '/v1/release-notices/' || n.id OR m.id IS NULL"
        )
        == []
    )
    # a clone's release and appointment dates move with it by whole days, keeping their gaps
    gaps = await world.sql(
        "SELECT n.release_date - (n.received_at AT TIME ZONE 'UTC')::date,"
        " a.appointment_date - n.release_date FROM release_notice n"
        " LEFT JOIN message m ON m.notice_id = n.id"
        " LEFT JOIN acknowledgement a ON a.message_id = m.id AND a.appointment_date IS NOT NULL"
    )
    released = date.fromisoformat(example["release"]["release_date"])
    ahead = (released - now.date()).days  # of the originals, posted just now
    assert {to_release for to_release, _ in gaps} <= {ahead, ahead - 1}
    assert sorted(booked for _, booked in gaps if booked is not None) == [DAYS_TO_BOOKED.days] * 3
    # every cloned log entry names the clone's person
    assert (
        await one(
            world,
            "SELECT count(*) FROM audit_entry e JOIN release_notice n ON n.id = e.notice_id"
            " WHERE e.person_ref IS DISTINCT FROM n.person_ref",
        )
        == 0
    )

    # the exchange carries on: a new notice gets the next inbox numbers, the inbox reads
    top = await one(world, "SELECT message_sequence FROM organisation WHERE code = 'N07'")
    await post(world, NOTICES, about(example, "D4444DD"))
    assert (
        await one(
            world,
            "SELECT max(sequence) FROM message m JOIN organisation o"
            " ON o.id = m.recipient_organisation_id WHERE o.code = 'N07'",
        )
        == top + 1
    )
    inbox = await world.api.get("/v1/messages?limit=100", headers=await world.headers("N07"))
    assert inbox.status_code == 200, inbox.text
    assert [m["sequence"] for m in inbox.json()["items"]] == list(range(1, top + 2))


async def test_grows_no_further_than_whole_people_allow(postgres_only, world, example, settings):
    for noms_number in ("A1111AA", "B2222BB"):  # two people with two versions each
        first = await post(world, NOTICES, about(example, noms_number))
        await post(world, f"{NOTICES}/{first['id']}/amendments", about(example, noms_number))
    assert await grow(settings.database_url, 5) == 4  # half a person cannot be cloned
    assert await grow(settings.database_url, 4) == 4
    assert await grow(settings.database_url, 8) == 8


async def test_clones_of_unnumbered_messages_are_numbered_and_the_originals_after_them(
    postgres_only, world, unnumbered_api, example, settings
):
    await post(world, "/v1/subscriptions", {"url": "http://127.0.0.1:9/hook"}, "N07")
    for noms_number in ("A1111AA", "B2222BB"):  # stored with no sequencer behind the API
        response = await unnumbered_api.post(
            NOTICES, json=about(example, noms_number), headers=await world.headers("MDI")
        )
        assert response.status_code == 202, response.text
    assert await one(world, "SELECT count(*) FROM message WHERE sequence IS NULL") == 4

    assert await grow(settings.database_url, 6) == 6

    # the clones are numbered, each inbox from 1 without a gap; the originals still wait
    numbered = "SELECT o.code, m.sequence FROM message m JOIN organisation o"
    numbered += " ON o.id = m.recipient_organisation_id WHERE m.sequence IS NOT NULL"
    clones = await world.sql(numbered)
    assert sorted(clones) == [(c, n) for c in ("N07", "SMS-LEEDS") for n in (1, 2, 3, 4)]
    assert await one(world, "SELECT count(*) FROM message WHERE sequence IS NULL") == 4
    # the sequencer numbers them after the clones, and every inbox stays gap-free
    assert await number_messages(world.sessions) == 4
    assert sorted(await world.sql(numbered)) == [
        (c, n) for c in ("N07", "SMS-LEEDS") for n in range(1, 7)
    ]
    assert await world.sql(
        "SELECT code, message_sequence FROM organisation WHERE message_sequence > 0 ORDER BY 1"
    ) == [("N07", 6), ("SMS-LEEDS", 6)]
