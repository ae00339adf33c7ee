"""Verify's two ways to an entry's leaf hash (app/audit/rows.py): spliced from the stored text on
PostgreSQL, recomputed from the values otherwise, and the second whenever the first does not
match. Both must find the same things: altered entries, and nothing in entries merely written
before details were stored canonical."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from hashlib import sha256

import pytest
from sqlalchemy import select, text

from app.audit import entries as audit
from app.audit import rows as log_rows
from app.audit import tree as log_tree
from app.storage.db import is_sqlite
from app.storage.log_tables import AuditEntry, AuditLeaf
from app.wire.canonical import canonical_json
from app.worker.loop import advance_log
from tests.helpers.audit import OLD, leaf, tamper, verified

AWKWARD = {  # what the splicing must escape or keep exactly as the canonical form does
    "quote": 'say "hi" \\ back',
    "controls": "\x00\x01\x1f\b\t\n\f\r\x7f",
    "non_ascii": "é ü 😀 \u2028",
    "nested": {"b": [1, -2.5, 1e21, None, True], "a": {}, "é": 0.1},
}


async def logged(world, settings, signer, **values) -> None:
    """One entry appended through the service, sequenced and checkpointed."""
    async with world.sessions() as session, session.begin():
        audit.append(session, "test.awkward", at=datetime.now(UTC), **values)
    await advance_log(world.sessions, settings, signer, now=datetime.now(UTC))


async def verifies(run, signer) -> None:
    code, output = await verified(run, signer)
    assert code == 0, output


async def test_details_are_stored_as_their_canonical_text(world, log):
    async with world.sessions() as session, session.begin():
        audit.append(session, "x.y", at=datetime.now(UTC), details={"b": 1, "a": "é"})
    async with world.sessions() as session:
        stored = await session.scalar(
            text("SELECT CAST(details AS TEXT) FROM audit_entry WHERE action = 'x.y'")
        )
    assert stored == '{"a":"é","b":1}'


async def test_a_spliced_document_is_the_canonical_one(world, log, settings, database_url):
    if is_sqlite(database_url):
        pytest.skip("entries are spliced on PostgreSQL only")
    await logged(
        world,
        settings,
        log,
        actor_organisation_id=uuid.uuid4(),
        actor_client_id='client "with" \\ \x01\x1f\n\t\x7f and é',
        message_id=uuid.uuid4(),
        subject_organisation_id=uuid.uuid4(),
        person_ref="ab" * 32,
        details=AWKWARD,
    )
    async with world.sessions() as session:
        connection = (await (await session.connection()).get_raw_connection()).driver_connection
        documents = await connection.fetch(log_rows._LEAVES, -1, 10_000)
        texts = await connection.fetch(log_rows._TEXT_LEAVES, [row[0] for row in documents])
        entries = {e.id: e for e in (await session.scalars(select(AuditEntry))).all()}
    assert any(row[3] == "test.awkward" for row in texts)
    spliced = {row[0]: log_rows.spliced(row) for row in texts}
    for row in documents:
        index, leaf_hash, entry_id = row[:3]
        canonical = canonical_json(log_tree.entry_document(entries[entry_id]))
        assert log_rows.joined(row) == canonical
        assert spliced[index] == canonical
        assert sha256(b"\x00" + canonical).digest() == leaf_hash


async def _old_entry(database_url: str) -> None:
    """An entry as the service stored it before: details in json.dumps' text, not canonical."""
    details = json.dumps({"b": 1, "a": "é"}).replace("'", "''")
    await tamper(
        database_url,
        "INSERT INTO audit_entry (recorded_at, action, details)"
        f" VALUES ('{OLD}', 'old.entry', '{details}')",
    )


async def old_entry_leaf(world) -> int:
    async with world.sessions() as session:
        return await session.scalar(
            select(AuditLeaf.leaf_index)
            .join(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
            .where(AuditEntry.action == "old.entry")
        )


async def test_an_entry_with_details_stored_before_verifies_from_its_values(
    world, log, settings, run, database_url, monkeypatch
):
    if not is_sqlite(database_url):  # the details made canonical suffice: no third reading

        async def refused(*_: object) -> None:
            raise AssertionError("an entry stored before was read as values")

        monkeypatch.setattr(log_rows, "_from_values", refused)
    await _old_entry(database_url)
    await advance_log(world.sessions, settings, log, now=datetime.now(UTC))
    await logged(world, settings, log, details={"after": "the old one"})
    await verifies(run, log)


async def test_an_old_entry_altered_is_still_named(world, log, settings, run, database_url):
    await _old_entry(database_url)
    await advance_log(world.sessions, settings, log, now=datetime.now(UTC))
    await logged(world, settings, log, details={})
    index = await old_entry_leaf(world)
    await tamper(database_url, "UPDATE audit_entry SET action = 'x.z' WHERE action = 'old.entry'")
    code, output = await verified(run, log)
    assert code == 1
    assert f"leaf {index}: its entry was altered or moved" in output


async def test_details_altered_in_canonical_form_are_named(world, log, run, database_url):
    entry = await leaf(world, 5)
    changed = canonical_json({**entry.details, "extra": 1}).decode().replace("'", "''")
    await tamper(
        database_url, f"UPDATE audit_entry SET details = '{changed}' WHERE id = {entry.id}"
    )
    code, output = await verified(run, log)
    assert code == 1
    assert "leaf 5: its entry was altered or moved" in output


async def test_details_rewritten_as_other_text_of_the_same_json_still_verify(
    world, log, run, database_url
):
    # The leaf commits to the values, not to the stored text: only the fast path misses.
    entry = await leaf(world, 5)
    spaced = json.dumps(entry.details, indent=2).replace("'", "''")
    await tamper(database_url, f"UPDATE audit_entry SET details = '{spaced}' WHERE id = {entry.id}")
    await verifies(run, log)


async def test_entries_the_service_wrote_need_no_second_reading(
    world, log, run, database_url, monkeypatch
):
    if is_sqlite(database_url):
        pytest.skip("entries are spliced on PostgreSQL only")

    async def refused(*_: object, **__: object) -> None:
        raise AssertionError("an entry the service wrote was read again")

    monkeypatch.setattr(log_rows, "_again", refused)
    await verifies(run, log)
