"""The exchange log's Merkle tree in storage (RFC 9162): sequencer, checkpoints and proofs.

Entries are written by whoever acts (app/audit/entries.py), concurrently, with no chain head to
wait on. One sequencer at a time (`sequence`, run by the worker) gives the committed entries that
have no leaf yet the next leaf indexes, gap-free, in entry-id order, and stores the hash of every
full subtree each new leaf completes (AuditNode; level 0 is the leaf itself, in AuditLeaf). Any root
or proof is then O(log n) stored hashes (merkle.subtree_hash_from_nodes), fetched in one query.
Every table here is insert-only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    and_,
    any_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import merkle
from app.audit.signer import LogSigner
from app.storage.log_tables import AuditCheckpoint, AuditEntry, AuditLeaf, AuditNode
from app.wire.canonical import canonical_json
from app.wire.errors import invalid

# The PostgreSQL advisory lock the sequencer and checkpointer hold for their transaction.
SEQUENCER_LOCK = 0x6E70_735F_6C6F_67  # "nps_log"
# How far below the highest sequenced entry id the sequencer still looks for unsequenced
# entries. On PostgreSQL ids come from a sequence when a transaction inserts, not when it
# commits, so an entry with a lower id may commit after one with a higher id was sequenced; it
# is then still found as long as fewer than this many ids were drawn in between (transactions
# stay short, so in practice a few hundred at most). The bound keeps the anti-join on an index
# range instead of the whole log, which grows to millions.
log = logging.getLogger("exchange.log")
LATE_COMMIT_WINDOW = 100_000
SWEEP_SECONDS = 600  # how often the worker searches the whole log for entries the window missed


def _stamp(at: datetime) -> str:
    at = at.astimezone(UTC)
    if at.year < 1000:  # strftime writes such a year in fewer than four digits
        return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return at.isoformat(timespec="microseconds")[:-6] + "Z"  # the same, twice as fast


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


# The columns a leaf commits to, in the order `document` takes their values.
ENTRY_COLUMNS = (
    AuditEntry.id,
    AuditEntry.recorded_at,
    AuditEntry.action,
    AuditEntry.actor_organisation_id,
    AuditEntry.actor_client_id,
    AuditEntry.notice_id,
    AuditEntry.message_id,
    AuditEntry.subject_organisation_id,
    AuditEntry.person_ref,
    AuditEntry.details,
)


def document(values: Sequence[Any]) -> dict[str, Any]:
    """What a leaf commits to, from the values of ENTRY_COLUMNS (a row of them reads faster
    than an ORM object): ids as strings, the time RFC 3339 in UTC to the µs."""
    entry_id, at, action, actor, client, notice, message, subject, person, details = values
    return {
        "id": str(entry_id),
        "recorded_at": _stamp(at),
        "action": action,
        "actor_organisation_id": _id(actor),
        "actor_client_id": client,
        "notice_id": _id(notice),
        "message_id": _id(message),
        "subject_organisation_id": _id(subject),
        "person_ref": person,
        "details": details,
    }


def entry_document(entry: AuditEntry) -> dict[str, Any]:
    return document([getattr(entry, column.key) for column in ENTRY_COLUMNS])


def leaf_hash(values: Sequence[Any]) -> bytes:
    """An entry's leaf hash, from the values of ENTRY_COLUMNS."""
    return merkle.leaf_hash(canonical_json(document(values)))


def entry_leaf_hash(entry: AuditEntry) -> bytes:
    return merkle.leaf_hash(canonical_json(entry_document(entry)))


async def _lock(session: AsyncSession) -> bool:
    """Whether this transaction may sequence. SQLite serialises writers itself."""
    if session.bind.dialect.name != "postgresql":
        return True
    query = text("SELECT pg_try_advisory_xact_lock(:key)")
    return bool(await session.scalar(query, {"key": SEQUENCER_LOCK}))


async def tree_size(session: AsyncSession) -> int:
    highest = await session.scalar(select(func.max(AuditLeaf.leaf_index)))
    return 0 if highest is None else highest + 1


@functools.cache
def _nodes_by_arrays() -> Any:
    """_stored_nodes' query on PostgreSQL: one statement, whatever the proof, its values in
    three arrays, so it is compiled once and prepared once a connection (PostgreSQL plans the
    pairs as an index probe each, the generic plan too). Expanding lists were rendered again at
    every call, costing SQLAlchemy more than the database spent answering, and a statement per
    count of values was compiled and prepared afresh for each new count."""
    leaves = select(literal(0), AuditLeaf.leaf_index, AuditLeaf.leaf_hash).where(
        AuditLeaf.leaf_index == any_(bindparam("leaves", type_=ARRAY(BigInteger)))
    )
    pairs = (
        func.unnest(
            bindparam("levels", type_=ARRAY(Integer)),
            bindparam("positions", type_=ARRAY(BigInteger)),
        )
        .table_valued("level", "position")
        .render_derived(name="wanted")
    )
    nodes = select(AuditNode.level, AuditNode.position, AuditNode.hash).where(
        tuple_(AuditNode.level, AuditNode.position).in_(select(pairs.c.level, pairs.c.position))
    )
    return union_all(leaves, nodes)


@functools.lru_cache(maxsize=512)  # a proof asks for at most a few leaves and 2 log2(size) nodes
def _nodes_by_values(leaves: int, nodes: int) -> Any:
    """_stored_nodes' query on SQLite, which has no arrays: built once for each count of leaves
    and nodes, a parameter per value. The pairs are an OR: SQLite answers a row-value IN by
    scanning the whole table. At least one of the counts is above 0."""
    parts: list[Any] = []
    if leaves:
        wanted = [bindparam(f"l{i}") for i in range(leaves)]
        parts.append(
            select(literal(0), AuditLeaf.leaf_index, AuditLeaf.leaf_hash).where(
                AuditLeaf.leaf_index.in_(wanted)
            )
        )
    if nodes:
        pairs = [
            and_(AuditNode.level == bindparam(f"v{i}"), AuditNode.position == bindparam(f"p{i}"))
            for i in range(nodes)
        ]
        parts.append(select(AuditNode.level, AuditNode.position, AuditNode.hash).where(or_(*pairs)))
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _nodes_query(
    dialect: str, leaves: list[int], nodes: list[tuple[int, int]]
) -> tuple[Any, dict[str, Any]]:
    """The statement that reads these leaves and nodes on this dialect, and its parameters."""
    if dialect == "postgresql":
        levels, positions = [level for level, _ in nodes], [position for _, position in nodes]
        return _nodes_by_arrays(), {"leaves": leaves, "levels": levels, "positions": positions}
    given = {f"l{i}": index for i, index in enumerate(leaves)}
    for i, (level, position) in enumerate(nodes):
        given[f"v{i}"], given[f"p{i}"] = level, position
    return _nodes_by_values(len(leaves), len(nodes)), given


async def _stored_nodes(session: AsyncSession, wanted: set[tuple[int, int]]) -> merkle.StoredNode:
    """A StoredNode answering from the full-subtree hashes in wanted, all read in one query."""
    leaves = [index for level, index in wanted if level == 0]
    nodes = [(level, position) for level, position in wanted if level]
    found: dict[tuple[int, int], bytes] = {}
    if leaves or nodes:
        query, given = _nodes_query(session.bind.dialect.name, leaves, nodes)
        rows = await session.execute(query, given)
        found = {(level, index): value for level, index, value in rows}
    missing = wanted - found.keys()
    if missing:  # the tree's invariant is broken: never answer with a made-up hash
        raise RuntimeError(f"the log's tree lacks stored nodes {sorted(missing)[:4]}")
    return lambda level, index: found[(level, index)]


async def _over_storage(session: AsyncSession, compute: Any) -> Any:
    """Run compute(subtree_hash) over stored hashes: once to learn which it needs, once for real."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(merkle.HASH_SIZE)

    compute(lambda start, end: merkle.subtree_hash_from_nodes(start, end, record))
    stored = await _stored_nodes(session, wanted)
    return compute(lambda start, end: merkle.subtree_hash_from_nodes(start, end, stored))


async def root(session: AsyncSession, size: int) -> bytes:
    return await _over_storage(session, lambda subtree: merkle.tree_root(size, subtree))


async def sequence(
    session: AsyncSession, now: datetime, limit: int = 1000, *, sweep: bool = False
) -> int:
    """Give up to limit committed, unsequenced entries the next leaf indexes; how many it gave.

    With sweep, the whole log is searched, not only the window: the worker sweeps every
    SWEEP_SECONDS, so an entry committed later than the window allows is still sequenced. An
    entry that cannot be hashed (written outside the service: audit.append refuses such
    details) is left without a leaf, logged by id, and reported by `exchange audit verify`.
    0 when another sequencer holds the lock. In the caller's transaction."""
    if not await _lock(session):
        return 0
    size = await tree_size(session)
    highest = await session.scalar(select(func.max(AuditLeaf.entry_id)))
    floor = -1 if sweep else (highest or 0) - LATE_COMMIT_WINDOW
    # NOT EXISTS over the same range of leaves: PostgreSQL then merges two index ranges; as an
    # outer join it hashed every leaf of the log, each pass (0.7 s at a million leaves).
    sequenced = select(AuditLeaf.leaf_index).where(
        AuditLeaf.entry_id == AuditEntry.id, AuditLeaf.entry_id > floor
    )
    entries = (
        await session.execute(
            select(*ENTRY_COLUMNS)
            .where(AuditEntry.id > floor, ~sequenced.exists())
            .order_by(AuditEntry.id)
            .limit(limit)
        )
    ).all()
    if not entries:
        return 0
    frontier = await _frontier(session, size)
    index = size
    leaves: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for entry in entries:
        try:
            leaf = leaf_hash(entry)
        except (ValueError, TypeError):
            log.error("log entry %s cannot be hashed: it is left without a leaf", entry[0])
            continue
        leaves.append(
            {"leaf_index": index, "entry_id": entry[0], "leaf_hash": leaf, "sequenced_at": now}
        )
        level, value = 0, leaf
        while frontier and frontier[-1][0] == level:  # leaf index completes a full subtree
            _, left = frontier.pop()
            level, value = level + 1, merkle.node_hash(left, value)
            nodes.append({"level": level, "position": index >> level, "hash": value})
        frontier.append((level, value))
        index += 1
    # Core executemany INSERTs, a statement for each table: the unit of work took longer than
    # the hashing, and an ORM bulk INSERT is compiled again every time.
    connection = await session.connection()
    for table, rows in ((AuditLeaf, leaves), (AuditNode, nodes)):
        if rows:
            await connection.execute(insert(table.__table__), rows)
    return index - size


async def _frontier(session: AsyncSession, size: int) -> list[tuple[int, bytes]]:
    """The full subtrees the tree of this size ends with, largest first: (level, hash)."""
    levels: list[tuple[int, int]] = []
    offset = 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            levels.append((level, offset >> level))
            offset += 1 << level
    stored = await _stored_nodes(session, set(levels))
    return [(level, stored(level, index)) for level, index in levels]


def _out_of_range(pointer: str, detail: str) -> Exception:
    return invalid([{"pointer": pointer, "detail": detail}])


async def _check_size(session: AsyncSession, pointer: str, size: int) -> None:
    current = await tree_size(session)
    if not 0 <= size <= current:
        raise _out_of_range(pointer, f"the log's tree has {current} leaves")


@functools.cache
def _leaf_query() -> Any:
    """The highest leaf index, a leaf's hash and its entry: built once, for every proof."""
    highest = select(func.max(AuditLeaf.leaf_index)).scalar_subquery()
    return (
        select(highest, AuditLeaf.leaf_hash, AuditEntry)
        .join(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
        .where(AuditLeaf.leaf_index == bindparam("leaf_index"))
    )


async def inclusion(
    session: AsyncSession, leaf_index: int, size: int
) -> tuple[AuditEntry, bytes, list[bytes]]:
    """The entry at leaf_index, its leaf hash and its audit path in the tree of this size.
    Two queries: the tree's size with the leaf and its entry, then the path's stored hashes."""
    row = (await session.execute(_leaf_query(), {"leaf_index": leaf_index})).first()
    if row is None:  # out of range, as the checks below tell, or a leaf lost
        await _check_size(session, "/tree_size", size)
    elif not 0 <= size <= row[0] + 1:
        raise _out_of_range("/tree_size", f"the log's tree has {row[0] + 1} leaves")
    if not 0 <= leaf_index < size:
        raise _out_of_range("/leaf_index", "a leaf index is at least 0 and below the tree size")
    if row is None:
        raise RuntimeError(f"the log's tree lacks leaf {leaf_index} or its entry")
    path = await _over_storage(
        session, lambda subtree: merkle.inclusion_proof(leaf_index, size, subtree)
    )
    return row[2], row[1], path


async def consistency(session: AsyncSession, first: int, second: int) -> list[bytes]:
    """That the tree of size first is a prefix of the tree of size second (RFC 9162 2.1.4)."""
    await _check_size(session, "/second", second)
    if not 0 <= first <= second:
        raise _out_of_range("/first", "first is at least 0 and at most second")
    return await _over_storage(
        session, lambda subtree: merkle.consistency_proof(first, second, subtree)
    )


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    query = select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    return await session.scalar(query)


async def checkpoint(
    session: AsyncSession,
    signer: LogSigner,
    now: datetime,
    *,
    every_entries: int,
    every_seconds: float,
) -> bool:
    """Sign a checkpoint of the tree as it is, if one is due: the tree grew by every_entries
    since the last one, or every_seconds have passed since then (since the first leaf, before
    any) and it grew at all. Whether it signed. In the caller's transaction."""
    if not await _lock(session):
        return False
    size = await tree_size(session)
    last = await latest_checkpoint(session)
    grown = size - (last.tree_size if last else 0)
    if grown <= 0:
        return False
    if grown < every_entries:
        since = (
            last.signed_at
            if last
            else await session.scalar(
                select(AuditLeaf.sequenced_at).where(AuditLeaf.leaf_index == 0)
            )
        )
        if since is not None and now - since < timedelta(seconds=every_seconds):
            return False
    signed_at = now.astimezone(UTC).replace(microsecond=0)  # the note's time has whole seconds
    root_hash = await root(session, size)
    note = signer.sign(size, root_hash, signed_at)
    session.add(
        AuditCheckpoint(tree_size=size, root_hash=root_hash, signed_at=signed_at, note=note)
    )
    await session.flush()
    return True
