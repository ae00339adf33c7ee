"""The exchange log's tree in storage: sequencer, stored nodes, checkpoints and proofs (issue 7).

Proofs are checked with app/merkle's verifiers and with the README's independent code; the
checkpoint with app/checkpoint and the verifier key the exchange publishes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.audit import entries as audit
from app.audit import merkle
from app.audit import tree as log_tree
from app.audit.checkpoint import parse_and_verify, parse_verifier_key
from app.audit.signer import LogSigner, load_log_signer
from app.storage.db import is_sqlite
from app.storage.log_tables import AuditEntry, AuditLeaf, AuditNode
from app.wire.canonical import canonical_json
from app.worker.loop import advance_log
from tests.helpers.problems import assert_problem
from tests.helpers.readme import python_blocks

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SIGNER = LogSigner(Ed25519PrivateKey.generate(), "test.example/log")


async def append_entries(sessions, count: int, action: str = "test.entry") -> None:
    async with sessions() as session, session.begin():
        for i in range(count):
            audit.append(session, action, at=NOW, details={"i": i, "note": "é"})


async def sequenced(sessions) -> list[tuple[int, int, bytes]]:
    async with sessions() as session:
        rows = await session.execute(
            select(AuditLeaf.leaf_index, AuditLeaf.entry_id, AuditLeaf.leaf_hash).order_by(
                AuditLeaf.leaf_index
            )
        )
        return [tuple(row) for row in rows]


async def sequence_all(sessions, limit: int = 1000) -> int:
    total = 0
    while True:
        async with sessions() as session, session.begin():
            count = await log_tree.sequence(session, NOW, limit=limit)
        if not count:
            return total
        total += count


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- the sequencer and the stored tree --------------------------------------------------------


async def test_the_sequencer_numbers_entries_without_gaps_in_id_order(world, example):
    assert (await world.post_notice(example)).status_code == 202
    await append_entries(world.sessions, 9)
    async with world.sessions() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()

    assert await sequence_all(world.sessions, limit=4) == len(entries)
    assert await sequence_all(world.sessions) == 0  # twice adds nothing

    leaves = await sequenced(world.sessions)
    assert [index for index, _, _ in leaves] == list(range(len(entries)))
    assert [entry_id for _, entry_id, _ in leaves] == [e.id for e in entries]
    for (_, _, leaf), entry in zip(leaves, entries, strict=True):
        document = log_tree.entry_document(entry)
        assert leaf == merkle.leaf_hash(canonical_json(document))
        assert document["id"] == str(entry.id)
        assert document["recorded_at"].endswith("Z") and len(document["recorded_at"]) == 27


async def test_stored_nodes_give_the_rfc_root_at_every_size(sessions):
    for batch in (1, 2, 3, 5, 8, 13):  # sequenced in uneven steps, so frontiers get reloaded
        await append_entries(sessions, batch)
        await sequence_all(sessions, limit=3)
    hashes = [leaf for _, _, leaf in await sequenced(sessions)]
    assert len(hashes) == 32
    async with sessions() as session:
        for size in range(len(hashes) + 1):
            assert await log_tree.root(session, size) == merkle.root_hash(hashes[:size])
        nodes = (await session.execute(select(AuditNode.level, AuditNode.position))).all()
    # every full subtree of 32 leaves above the leaves: 16 + 8 + 4 + 2 + 1
    assert sorted(nodes) == sorted(
        (level, position) for level in range(1, 6) for position in range(32 >> level)
    )


async def test_a_proofs_stored_hashes_are_read_by_index_not_by_scanning_the_tree(
    sessions, database_url
):
    """SQLite answers a row-value IN (VALUES ...) by scanning the whole table: a proof in a log
    of a million entries read every stored node. The pairs are an OR, an index probe each."""
    if not is_sqlite(database_url):
        pytest.skip("the plan checked is SQLite's; PostgreSQL probes the index for either form")
    await append_entries(sessions, 40)
    await sequence_all(sessions)
    async with sessions() as session:
        connection = await session.connection()
        query, given = log_tree._nodes_query("sqlite", [3, 8], [(1, 0), (2, 1), (3, 0)])
        compiled = query.compile(dialect=connection.dialect)
        bound = compiled.construct_params(given)
        values = tuple(bound[name] for name in compiled.positiontup)
        plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)
        steps = [row[-1] for row in plan]
        rows = await connection.exec_driver_sql(str(compiled), values)
        found = {(level, index) for level, index, _ in rows}
    assert not [step for step in steps if re.match(r"SCAN (TABLE )?audit", step)], steps
    assert found == {(0, 3), (0, 8), (1, 0), (2, 1), (3, 0)}


@pytest.mark.postgres
async def test_a_late_commit_below_the_highest_sequenced_id_is_still_sequenced(
    sessions, database_url
):
    if is_sqlite(database_url):
        pytest.skip("SQLite serialises writers: no transaction commits out of id order")
    await append_entries(sessions, 3)
    async with sessions() as session, session.begin():
        audit.append(session, "test.late", at=NOW)
        await session.flush()  # draws its id now; the three below commit (and sequence) first
        await append_entries(sessions, 2)
        await sequence_all(sessions)
    await sequence_all(sessions)
    leaves = await sequenced(sessions)
    assert [index for index, _, _ in leaves] == list(range(6))
    assert len({entry_id for _, entry_id, _ in leaves}) == 6


@pytest.mark.postgres
async def test_two_sequencers_at_once_give_no_duplicate_or_gap(sessions, database_url):
    if is_sqlite(database_url):
        pytest.skip("SQLite serialises writers itself")

    async def sequencer() -> None:
        for _ in range(30):
            async with sessions() as session, session.begin():
                await log_tree.sequence(session, NOW, limit=7)
            await asyncio.sleep(0)

    async def writer() -> None:
        for _ in range(20):
            await append_entries(sessions, 3)

    await asyncio.gather(sequencer(), sequencer(), writer(), sequencer())
    await sequence_all(sessions)
    leaves = await sequenced(sessions)
    assert [index for index, _, _ in leaves] == list(range(60))
    assert len({entry_id for _, entry_id, _ in leaves}) == 60
    hashes = [leaf for _, _, leaf in leaves]
    async with sessions() as session:
        assert await log_tree.root(session, 60) == merkle.root_hash(hashes)


@pytest.mark.postgres
async def test_a_sequencer_waits_for_none_while_another_holds_the_lock(sessions, database_url):
    if is_sqlite(database_url):
        pytest.skip("the advisory lock is PostgreSQL's")
    await append_entries(sessions, 2)
    async with sessions() as holder, holder.begin():
        assert await log_tree.sequence(holder, NOW) == 2
        async with sessions() as other, other.begin():
            assert await log_tree.sequence(other, NOW) == 0
            assert not await log_tree.checkpoint(
                other, SIGNER, NOW, every_entries=1, every_seconds=1
            )
    assert [index for index, _, _ in await sequenced(sessions)] == [0, 1]


# --- checkpoints ------------------------------------------------------------------------------


async def test_checkpoint_cadence(app, sessions, settings):
    signer = app.state.log_signer
    ready = settings.model_copy(update={"checkpoint_every_entries": 5})

    async def tick(at: datetime) -> tuple[int, bool]:
        return await advance_log(sessions, ready, signer, now=at)

    assert await tick(NOW) == (0, False)  # an empty log: nothing to sign
    await append_entries(sessions, 3)
    assert await tick(NOW) == (3, False)  # grew by 3 < 5, and no time has passed
    assert await tick(NOW + timedelta(seconds=59)) == (0, False)
    assert await tick(NOW + timedelta(seconds=60)) == (0, True)  # T seconds since the first leaf
    assert await tick(NOW + timedelta(seconds=600)) == (0, False)  # not grown: nothing
    await append_entries(sessions, 5)
    assert await tick(NOW + timedelta(seconds=601)) == (5, True)  # N entries: at once
    await append_entries(sessions, 1)
    assert await tick(NOW + timedelta(seconds=660)) == (1, False)
    assert await tick(NOW + timedelta(seconds=661)) == (0, True)  # T seconds since the last one
    async with sessions() as session:
        latest = await log_tree.latest_checkpoint(session)
    assert latest is not None and latest.tree_size == 9


async def test_the_checkpoint_endpoint_serves_a_note_that_verifies(world, app, settings):
    body = assert_problem(await get(world, "/v1/audit/checkpoint"), 404)
    assert "no checkpoint" in body["detail"]

    every_entry = settings.model_copy(update={"checkpoint_every_entries": 1})
    await advance_log(world.sessions, every_entry, app.state.log_signer, now=NOW)
    response = await get(world, "/v1/audit/checkpoint")
    assert response.status_code == 200, response.text
    served = response.json()
    origin = f"{settings.issuer.split('://')[1].split(':')[0]}/log"
    name, public_key = parse_verifier_key(served["verifier_key"])
    assert name == origin
    checkpoint = parse_and_verify(served["note"], public_key, name, origin=origin)
    assert checkpoint.size == served["tree_size"] > 0
    assert checkpoint.root == b64(served["root_hash"])
    assert checkpoint.time == datetime.fromisoformat(served["signed_at"]) == NOW
    hashes = [leaf for _, _, leaf in await sequenced(world.sessions)]
    assert checkpoint.root == merkle.root_hash(hashes)

    readme: dict[str, Any] = {}
    exec(compile(python_blocks()[0], "README.md", "exec"), readme)  # noqa: S102 - our README
    assert readme["verify_checkpoint"](served["note"], served["verifier_key"]) == (
        checkpoint.size,
        checkpoint.root,
    )


def test_the_log_key_is_made_owner_only_and_refused_when_not(settings):
    signer = load_log_signer(settings)
    path = settings.data_dir / "log-key" / "ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_log_signer(settings).verifier_key == signer.verifier_key  # read, not remade
    os.chmod(path, 0o640)
    with pytest.raises(ValueError, match="owner-only"):
        load_log_signer(settings)


# --- proofs -----------------------------------------------------------------------------------


async def get(world, path: str, **params: Any):
    return await world.api.get(path, params=params, headers=await world.headers("AUDIT"))


async def test_inclusion_and_consistency_proofs_verify(world):
    await append_entries(world.sessions, 11)
    await sequence_all(world.sessions)
    hashes = [leaf for _, _, leaf in await sequenced(world.sessions)]
    size = len(hashes)
    readme: dict[str, Any] = {}
    exec(compile(python_blocks()[0], "README.md", "exec"), readme)  # noqa: S102 - our README

    for tree_size in (1, 2, 7, 8, size):
        root = merkle.root_hash(hashes[:tree_size])
        for index in range(tree_size):
            response = await get(
                world, "/v1/audit/proofs/inclusion", leaf_index=index, tree_size=tree_size
            )
            assert response.status_code == 200, response.text
            body = response.json()
            leaf, path = b64(body["leaf_hash"]), [b64(h) for h in body["hashes"]]
            assert leaf == hashes[index]
            assert readme["leaf_hash"](canonical_json(body["entry"])) == leaf
            merkle.verify_inclusion(leaf, index, tree_size, proof=path, root=root)
            assert readme["verify_inclusion"](leaf, index, tree_size, path, root)
            if path:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_inclusion(leaf, index, tree_size, proof=path[:-1], root=root)

    for first in range(size + 1):
        for second in (first, size):
            response = await get(world, "/v1/audit/proofs/consistency", first=first, second=second)
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["first"], body["second"]) == (first, second)
            merkle.verify_consistency(
                first,
                second,
                first_root=merkle.root_hash(hashes[:first]),
                second_root=merkle.root_hash(hashes[:second]),
                proof=[b64(h) for h in body["hashes"]],
            )
    if size > 2:
        proof = (await get(world, "/v1/audit/proofs/consistency", first=3, second=size)).json()
        with pytest.raises(merkle.ProofError):  # a tree that is not the prefix is caught
            merkle.verify_consistency(
                3,
                size,
                first_root=merkle.root_hash(hashes[1:4]),
                second_root=merkle.root_hash(hashes),
                proof=[b64(h) for h in proof["hashes"]],
            )


INCLUSION, CONSISTENCY = "/v1/audit/proofs/inclusion", "/v1/audit/proofs/consistency"


@pytest.mark.parametrize(
    ("path", "params", "pointer"),
    [  # n: the size of the tree
        (INCLUSION, lambda n: {"leaf_index": 0, "tree_size": n + 1}, "/tree_size"),
        (INCLUSION, lambda n: {"leaf_index": n, "tree_size": n + 1}, "/tree_size"),
        (INCLUSION, lambda n: {"leaf_index": n, "tree_size": n}, "/leaf_index"),
        (INCLUSION, lambda n: {"leaf_index": 0, "tree_size": 0}, "/leaf_index"),
        (INCLUSION, lambda n: {"leaf_index": -1, "tree_size": n}, "/leaf_index"),
        (INCLUSION, lambda n: {"leaf_index": 0, "tree_size": 2**64}, "/tree_size"),
        (INCLUSION, lambda n: {"leaf_index": "x", "tree_size": n}, "/leaf_index"),
        (INCLUSION, lambda n: {"tree_size": n}, "/leaf_index"),
        (CONSISTENCY, lambda n: {"first": 3, "second": 2}, "/first"),
        (CONSISTENCY, lambda n: {"first": 1, "second": n + 1}, "/second"),
        (CONSISTENCY, lambda n: {"first": -1, "second": 2}, "/first"),
        (CONSISTENCY, lambda n: {"first": 0, "second": -2}, "/second"),
    ],
)
async def test_out_of_range_proofs_are_refused(world, path, params, pointer):
    await world.headers("AUDIT")  # its client is in the log too
    await append_entries(world.sessions, 5)
    await sequence_all(world.sessions)
    size = len(await sequenced(world.sessions))
    body = assert_problem(await get(world, path, **params(size)), 422)
    assert pointer in [e["pointer"] for e in body["errors"]]


async def test_the_tree_endpoints_need_audit_read(world):
    for path in ("/v1/audit/checkpoint", "/v1/audit/proofs/consistency?first=0&second=0"):
        assert (await world.api.get(path)).status_code == 401
        prison = await world.api.get(path, headers=await world.headers("MDI"))
        assert prison.status_code == 403


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_an_entrys_time_is_written_as_strftime_writes_it(at: datetime) -> None:
    # log_tree writes it by isoformat, which is faster; every leaf so far was hashed over this
    try:
        expected = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except OverflowError:  # no UTC time for it
        return
    assert log_tree._stamp(at) == expected


def test_a_row_of_entry_columns_makes_the_same_document_as_the_entry() -> None:
    entry = AuditEntry(
        id=7,
        recorded_at=NOW,
        action="test.entry",
        actor_client_id="client",
        person_ref="ab" * 32,
        details={"b": [1, None], "a": "é"},
    )
    values = [getattr(entry, column.key) for column in log_tree.ENTRY_COLUMNS]
    assert log_tree.document(values) == log_tree.entry_document(entry)
    assert log_tree.leaf_hash(values) == log_tree.entry_leaf_hash(entry)
