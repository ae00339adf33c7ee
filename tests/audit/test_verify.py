"""`exchange audit verify` finds what was changed behind the service's back (issue 7 item 5).

Tampering needs the triggers out of the way, as an attacker with the database's owner rights
would have them: PostgreSQL's replica role skips triggers and foreign keys; on SQLite a plain
connection drops the triggers first.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.audit import entries as audit
from app.audit import rows as log_rows
from app.audit import tree as log_tree
from app.audit import verify as log_verify
from app.audit.signer import key_path, load_log_signer
from app.settings import Settings
from app.storage.db import is_sqlite
from app.storage.log_tables import AuditEntry, AuditLeaf
from app.worker.loop import advance_log
from tests.helpers.audit import OLD, leaf, tamper, verified


async def size(world) -> int:
    async with world.sessions() as session:
        return await log_tree.tree_size(session)


async def test_an_untouched_log_verifies(world, log, run):
    code, output = await verified(run, log)
    assert code == 0, output
    assert f"ok: {await size(world)} leaves, 3 checkpoints checked" in output


async def test_an_altered_entry_is_named_by_its_leaf(world, log, run, database_url):
    entry = await leaf(world, 5)
    await tamper(
        database_url, f"UPDATE audit_entry SET action = 'nothing.to.see' WHERE id = {entry.id}"
    )
    code, output = await verified(run, log)
    assert code == 1
    assert "leaf 5: its entry was altered or moved" in output
    assert "do not make its signed root" in output  # and the checkpoints after it fail


async def test_a_removed_entry_is_named_by_its_leaf(world, log, run, database_url):
    entry = await leaf(world, 3)
    await tamper(database_url, f"DELETE FROM audit_entry WHERE id = {entry.id}")
    code, output = await verified(run, log)
    assert code == 1
    assert "leaf 3: its entry was removed" in output


async def test_entries_swapped_are_both_named(world, log, run, database_url):
    first, second = await leaf(world, 2), await leaf(world, 7)
    await tamper(
        database_url,
        "UPDATE audit_leaf SET entry_id = -1 WHERE leaf_index = 2",  # entry_id is unique
        f"UPDATE audit_leaf SET entry_id = {first.id} WHERE leaf_index = 7",
        f"UPDATE audit_leaf SET entry_id = {second.id} WHERE leaf_index = 2",
    )
    code, output = await verified(run, log)
    assert code == 1
    assert "leaf 2: its entry was altered or moved" in output
    assert "leaf 7: its entry was altered or moved" in output


async def test_an_entry_rewritten_with_its_leaf_hash_is_caught_by_the_signed_root(
    world, log, run, database_url
):
    entry = await leaf(world, 4)
    entry.action = "nothing.to.see"
    forged = log_tree.entry_leaf_hash(entry).hex()
    leaf_hash = f"X'{forged}'" if is_sqlite(database_url) else f"'\\x{forged}'::bytea"
    await tamper(
        database_url,
        f"UPDATE audit_entry SET action = 'nothing.to.see' WHERE id = {entry.id}",
        f"UPDATE audit_leaf SET leaf_hash = {leaf_hash} WHERE leaf_index = 4",
    )
    code, output = await verified(run, log)
    assert code == 1
    assert "leaf 4: its entry" not in output  # the leaf matches its (forged) entry ...
    assert "do not make its signed root" in output  # ... but not what was signed


async def test_a_removed_leaf_is_a_gap(world, log, run, database_url):
    await tamper(database_url, "DELETE FROM audit_leaf WHERE leaf_index = 6")
    code, output = await verified(run, log)
    assert code == 1
    assert "leaf 6: leaves 6 to 6 are missing" in output


async def test_another_key_does_not_verify_the_checkpoints(world, log, run, settings, tmp_path):
    other = load_log_signer(settings.model_copy(update={"data_dir": tmp_path / "elsewhere"}))
    code, output = await verified(run, other)
    assert code == 1
    assert "no signature by" in output


async def test_a_malformed_verifier_key_is_refused(world, run):
    result = await asyncio.to_thread(run, "audit", "verify", "--verifier-key", "nonsense")
    assert result.exit_code == 2
    assert "verifier key" in result.output


async def test_leaves_are_recomputed_from_their_entries(world, log):
    async with world.sessions() as session:
        rows = (
            await session.execute(
                select(AuditLeaf, AuditEntry).join(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
            )
        ).all()
    assert rows and all(log_tree.entry_leaf_hash(e) == leaf.leaf_hash for leaf, e in rows)


async def test_without_a_verifier_key_or_a_log_key_it_refuses_rather_than_make_one(
    world, run, tmp_path
):
    result = await asyncio.to_thread(run, "audit", "verify")
    assert result.exit_code == 2
    assert "--verifier-key" in result.output
    # A key made here would be a new log's, and checking against it would prove nothing.
    assert not key_path(Settings(data_dir=tmp_path / "var")).exists()


# --- what a review found: entries no leaf commits to, unhashable entries, no checkpoint -------


async def test_an_entry_in_no_leaf_is_reported(world, log, run, database_url):
    await tamper(
        database_url,
        f"INSERT INTO audit_entry (recorded_at, action, details) VALUES ('{OLD}', 'x.y', '{{}}')",
    )
    code, output = await verified(run, log)
    assert code == 1
    assert "is in no leaf" in output


@pytest.mark.parametrize("also_removed", [False, True])
async def test_an_entry_in_no_leaf_among_the_sequenced_is_reported(
    world, log, run, database_url, also_removed
):
    """Below the highest entry a leaf names (an id before the others'), and beside an entry
    removed from under its leaf: the count that spares verify looking through every entry
    must not hide it."""
    statements = [
        "INSERT INTO audit_entry (id, recorded_at, action, details)"
        f" VALUES (0, '{OLD}', 'x.y', '{{}}')"
    ]
    if also_removed:
        statements.append(f"DELETE FROM audit_entry WHERE id = {(await leaf(world, 3)).id}")
    await tamper(database_url, *statements)
    code, output = await verified(run, log)
    assert code == 1
    assert "entry 0 is in no leaf" in output
    assert ("leaf 3: its entry was removed" in output) == also_removed


async def test_verify_reads_the_log_as_it_stood_when_it_began(
    world, log, database_url, monkeypatch
):
    """On PostgreSQL one snapshot: what is changed while it walks (an entry ahead of it removed,
    one in no leaf written) is neither found nor mistaken, and the counts it compares are of one
    state of the log."""
    if is_sqlite(database_url):
        pytest.skip("the walk is one snapshot on PostgreSQL")
    monkeypatch.setattr(log_rows, "BATCH", 2)
    last = (await leaf(world, await size(world) - 1)).id
    changes = [
        f"DELETE FROM audit_entry WHERE id = {last}",
        "INSERT INTO audit_entry (id, recorded_at, action, details)"
        f" VALUES (0, '{OLD}', 'x.y', '{{}}')",
    ]
    changed: list[int] = []

    def meanwhile(done: int, _total: int) -> None:  # after the first batch, from elsewhere
        if not changed:
            changed.append(done)
            thread = threading.Thread(target=asyncio.run, args=(tamper(database_url, *changes),))
            thread.start()
            thread.join()

    key = log.private_key.public_key()
    async with world.sessions() as session:
        report = await log_verify.verify(session, key, log.origin, progress=meanwhile)
    assert changed == [2] and report.findings == []
    async with world.sessions() as session:  # afterwards, both are found
        found = await log_verify.verify(session, key, log.origin)
    assert {f.problem for f in found.findings} >= {"its entry was removed", "entry 0 is in no leaf"}


async def test_the_sweep_sequences_an_entry_the_window_missed(world, log, settings, monkeypatch):
    monkeypatch.setattr(log_tree, "LATE_COMMIT_WINDOW", 0)
    now = datetime.now(UTC)
    async with world.sessions() as session, session.begin():  # committed late, with a low id
        session.add(AuditEntry(id=0, recorded_at=now, action="x.y", details={}))
    assert (await advance_log(world.sessions, settings, log, now=now))[0] == 0
    assert (await advance_log(world.sessions, settings, log, now=now, sweep=True))[0] == 1


async def test_an_unhashable_entry_does_not_stop_the_log_and_is_reported(
    world, log, example, settings, run, database_url
):
    await tamper(
        database_url,
        "INSERT INTO audit_entry (recorded_at, action, details)"
        f" VALUES ('{OLD}', 'x.y', '{{\"n\": 1e999}}')",
    )
    before = await size(world)
    assert (await world.post_notice(example)).status_code == 202
    await advance_log(world.sessions, settings, log, now=datetime.now(UTC))
    assert await size(world) > before  # the rest of the log goes on
    code, output = await verified(run, log)
    assert code == 1 and "is in no leaf" in output


async def test_an_entry_tampered_into_no_json_is_named_not_a_crash(world, log, run, database_url):
    entry = await leaf(world, 5)
    await tamper(
        database_url, f"UPDATE audit_entry SET details = '{{\"n\": 1e999}}' WHERE id = {entry.id}"
    )
    code, output = await verified(run, log)
    assert code == 1
    assert "leaf 5: its entry was altered (not JSON)" in output


async def test_a_log_with_its_checkpoints_deleted_does_not_verify(world, log, run, database_url):
    await tamper(database_url, "DELETE FROM audit_checkpoint")
    code, output = await verified(run, log)
    assert code == 1
    assert "no checkpoint" in output


async def test_the_log_refuses_details_it_could_not_hash_exactly(world):
    async with world.sessions() as session:
        with pytest.raises(ValueError):
            audit.append(session, "x.y", at=datetime.now(UTC), details={"n": float("inf")})
