"""What one notice costs the database: each table written in one statement, however many
recipients (issue 8). Statements are counted on the real engine, on both databases; a count is
not a timing, so it is the same on any machine."""

from __future__ import annotations

import copy
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event, select

from app.notices.examples import moved
from app.storage.db import is_sqlite
from app.storage.log_tables import AuditEntry
from app.storage.models import Message
from tests.conftest import number_messages

RECIPIENTS = ("N07", "SMS-LEEDS")
INSERT = re.compile(r"\bINSERT INTO (\w+)", re.I)  # on PostgreSQL, several in one WITH


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """Every statement the app's engine sends while the block runs."""
    engine = app.state.sessions.kw["bind"].sync_engine
    seen: list[str] = []

    def note(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def test_one_notice_writes_each_table_once(app, world, example, database_url, unnumbered_api):
    for code in RECIPIENTS:
        response = await world.api.post(
            "/v1/subscriptions",
            json={"url": f"http://127.0.0.1:9/{code}"},
            headers=await world.headers(code),
        )
        assert response.status_code == 201, response.text
    await world.token("MDI")  # the token is fetched before counting
    headers = await world.headers("MDI") | {"idempotency-key": str(uuid.uuid4())}
    with statements(app) as seen:
        response = await unnumbered_api.post("/v1/release-notices", json=example, headers=headers)
    assert response.status_code == 202, response.text
    assert [r["message_id"] is not None for r in response.json()["recipients"]] == [True, True]
    inserts = Counter(table for s in seen for table in INSERT.findall(s))
    # Both recipients' disclosures, messages and deliveries go in one statement per table ...
    assert inserts["disclosure"] == inserts["message"] == inserts["delivery"] == 1, inserts
    assert inserts["release_notice"] == 1, inserts
    # ... the log's entries too, all of them ...
    assert inserts["audit_entry"] == 1, inserts
    # ... and on PostgreSQL every table in one statement (app/storage/batch.py).
    if not is_sqlite(database_url):
        assert len([s for s in seen if INSERT.search(s) and "idempotency_key" not in s]) == 1
    notified = [s for s in seen if "pg_notify" in s]
    assert len(notified) == (0 if is_sqlite(database_url) else 1)
    # The workers are told by the statement that reads the subscriptions, not one of its own;
    # a new idempotency key is claimed by its insert alone; and the example's refusal of a
    # consent the person never gave searches for no message relying on it.
    assert not [s for s in seen if s.lstrip().upper().startswith("SELECT PG_NOTIFY")], seen
    assert not [s for s in seen if re.match(r"\s*SELECT idempotency_key", s)], seen
    assert not [s for s in seen if re.match(r"\s*SELECT message", s)], seen
    # Intake locks nothing of the recipients': their inbox counters are not touched, and the
    # messages are stored unnumbered, for the sequencer to number after commit.
    assert not [s for s in seen if re.match(r"\s*UPDATE organisation", s)], seen
    assert not [s for s in seen if "FROM organisation" in s and " FOR " in s], seen
    query = (
        "SELECT o.code, m.sequence FROM message m JOIN organisation o"
        " ON o.id = m.recipient_organisation_id"
    )
    assert sorted(await world.sql(query)) == [("N07", None), ("SMS-LEEDS", None)]
    # Each sequence number is the recipient's own, gap-free.
    assert await number_messages(world.sessions) == 2
    assert sorted(await world.sql(query)) == [("N07", 1), ("SMS-LEEDS", 1)]


async def test_every_entry_about_the_notice_names_its_person(world, example):
    """Entries written without a person_ref take the notice's, now read from the session."""
    response = await world.post_notice(example)
    assert response.status_code == 202, response.text
    notice_id = response.json()["id"]
    expected = world.data_keys.person_ref(example["person"]["noms_number"])
    async with world.sessions() as session:
        rows = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.person_ref).where(
                    AuditEntry.notice_id == uuid.UUID(notice_id)
                )
            )
        ).all()
    assert len(rows) >= 5, rows  # received, consent, per recipient decided and signed
    assert {person for _, person in rows} == {expected}, rows


async def test_a_later_notice_refusing_a_consent_once_given_still_revokes_what_relied_on_it(
    world, example
):
    """The search skipped for a consent never given still runs for one given before."""
    first = await world.post_notice(example)
    assert first.status_code == 202, first.text
    relied = {r["organisation_code"]: r["message_id"] for r in first.json()["recipients"]}
    assert relied["SMS-LEEDS"] is not None  # sent under the consent given
    later = copy.deepcopy(example)
    given = example["consent"][0]["recorded_at"]  # days before today, as the example is moved
    refused = moved(given, timedelta(days=1))  # after it, and still in the past
    later["consent"] = [{**example["consent"][0], "decision": "refused", "recorded_at": refused}]
    second = await world.post_notice(later)
    assert second.status_code == 202, second.text
    async with world.sessions() as session:
        revoked_at, withdrawn_at = (
            await session.execute(
                select(Message.revoked_at, Message.withdrawn_at).where(
                    Message.id == uuid.UUID(relied["SMS-LEEDS"])
                )
            )
        ).one()
    assert revoked_at is not None or withdrawn_at is not None
