"""Check the exchange log against itself without trusting the database: recompute every leaf
from its entry, the tree from those leaves, and every checkpoint's root and signature.

What it reports, each with the leaf index it concerns:
- a leaf whose entry no longer exists (removed), or whose entry no longer hashes to the leaf
  (altered, or moved: an entry put in another's place hashes to neither);
- a gap in the leaf indexes;
- a checkpoint whose signature fails, or whose signed root is not the root recomputed from the
  entries at its size (what catches an entry and its leaf hash rewritten together, and entries
  reordered with their leaves); it names the first leaf after the last checkpoint that held.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import merkle
from app.audit import rows as log_rows
from app.audit.checkpoint import CheckpointError, parse_and_verify
from app.audit.tree import SWEEP_SECONDS
from app.storage.log_tables import AuditCheckpoint, AuditEntry, AuditLeaf

ENTRY_REMOVED = "its entry was removed"


@dataclass(frozen=True)
class Finding:
    leaf_index: int | None  # None: an entry with no leaf, named in the problem
    problem: str


@dataclass(frozen=True)
class Report:
    leaves: int
    checkpoints: int
    findings: list[Finding]


class Frontier:
    """The perfect subtrees of the leaves so far, largest first: the root at any size in O(log n)
    memory (RFC 9162's MTH folds them right to left)."""

    def __init__(self) -> None:
        self.size = 0
        self.nodes: list[tuple[int, bytes]] = []  # (number of leaves, hash)

    def add(self, leaf: bytes) -> None:
        self._push(1, leaf)

    def extend(self, leaves: Sequence[bytes]) -> None:
        """add() each of them, as fewer, larger perfect subtrees: each as large as fits in what
        is left and starts at a multiple of its size (as the tree's own subtrees do)."""
        position, left = 0, len(leaves)
        while left:
            count = 1 << (left.bit_length() - 1)
            if self.size:
                count = min(count, self.size & -self.size)  # the largest power of 2 dividing it
            end = position + count
            self._push(count, merkle.perfect_subtree_hash(leaves[position:end]))
            position, left = end, left - count

    def _push(self, count: int, value: bytes) -> None:
        """Add a perfect subtree of count leaves, count dividing the size so far."""
        self.size += count
        while self.nodes and self.nodes[-1][0] == count:
            _, left = self.nodes.pop()
            count, value = count * 2, merkle.node_hash(left, value)
        self.nodes.append((count, value))

    def root(self) -> bytes:
        if not self.nodes:
            return merkle.root_hash([])
        root = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            root = merkle.node_hash(left, root)
        return root


async def verify(
    session: AsyncSession,
    public_key: Ed25519PublicKey,
    origin: str,
    *,
    progress: Callable[[int, int], None] = lambda done, total: None,
    unsequenced_before: datetime | None = None,
) -> Report:
    """unsequenced_before: entries older than this must have a leaf (default: twice the
    sequencer's sweep period ago; it otherwise runs once a second). On PostgreSQL, given a
    session with no transaction begun, it reads one snapshot of the log (REPEATABLE READ)."""
    unsequenced_before = unsequenced_before or datetime.now(UTC) - 2 * timedelta(
        seconds=SWEEP_SECONDS
    )
    postgres = session.bind.dialect.name == "postgresql"
    # The log as it stood at one instant, whatever is written meanwhile: the transaction's
    # first statement, so only when the caller has not begun one (the command has not).
    snapshot = postgres and not session.in_transaction()
    if snapshot:
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    total = (await session.scalar(select(func.count()).select_from(AuditLeaf))) or 0
    rows = (
        await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size))
    ).all()
    findings: list[Finding] = []
    frontier = Frontier()
    checkpoints = _Checkpoints(rows, public_key, origin, findings)
    checkpoints.check(frontier)  # a checkpoint of the empty tree
    if postgres:
        # Each batch is a short index range: workers of a parallel plan cost more to start
        # than the batch takes to read (25 ms against 12 ms for 5000 entries).
        await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    whole = True  # every leaf walked: no gap stopped the walk
    with _no_cycle_collection():
        async with aclosing(log_rows.leaves(session)) as batches:
            async for batch in batches:
                if not _add(batch, frontier, findings, checkpoints=checkpoints):
                    whole = False
                    break
                progress(frontier.size, total)
    for size, _, _ in checkpoints.pending:
        findings.append(Finding(size, f"checkpoint {size}: beyond the leaves"))
    if frontier.size and not rows:
        findings.append(Finding(0, "no checkpoint: nothing signed vouches for these leaves"))
    with_entries = None
    if snapshot and whole:
        with_entries = frontier.size - sum(f.problem == ENTRY_REMOVED for f in findings)
    findings += await _unsequenced(session, unsequenced_before, with_entries)
    return Report(frontier.size, len(rows), findings)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A million leaves make millions of short-lived objects, none in a cycle (rows, tuples,
    hashes): the cyclic collector would walk them again and again for nothing (a fifth of a
    verify's CPU time). Reference counting frees them all the same."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Checkpoints:
    """The checkpoints in size order, each checked when the tree reaches its size (`due`)."""

    def __init__(
        self,
        rows: Sequence[AuditCheckpoint],
        public_key: Ed25519PublicKey,
        origin: str,
        findings: list[Finding],
    ) -> None:
        self.pending = deque((row.tree_size, row.root_hash, row.note) for row in rows)
        self.public_key, self.origin, self.findings = public_key, origin, findings
        self.last_good = 0  # the size of the last checkpoint that held
        self.due = self.pending[0][0] if self.pending else -1

    def check(self, frontier: Frontier) -> None:
        """Check the checkpoints of the tree's size, if any."""
        findings = self.findings
        while self.pending and self.pending[0][0] == frontier.size:
            size, root_hash, note = self.pending.popleft()
            try:
                signed = parse_and_verify(note, self.public_key, self.origin, origin=self.origin)
            except CheckpointError as error:
                findings.append(Finding(size, f"checkpoint {size}: {error}"))
                continue
            if (signed.size, signed.root) != (size, root_hash):
                findings.append(Finding(size, f"checkpoint {size}: row differs from note"))
            elif signed.root != frontier.root():
                findings.append(
                    Finding(
                        self.last_good,
                        f"checkpoint {size}: the entries do not make its signed root "
                        f"(something changed at or after leaf {self.last_good})",
                    )
                )
            else:
                self.last_good = size
        self.due = self.pending[0][0] if self.pending else -1


def _add(
    batch: list[log_rows.Leaf],
    frontier: Frontier,
    findings: list[Finding],
    *,
    checkpoints: _Checkpoints,
) -> bool:
    """Add a batch of leaves to the tree, noting what is wrong; False at a gap (the rest of the
    tree cannot be rebuilt). A batch with nothing wrong is added in perfect subtrees."""
    start, count = frontier.size, len(batch)
    if batch[0][0] == start and batch[-1][0] == start + count - 1:  # indexes are unique
        stored = [leaf[1] for leaf in batch]
        if stored == [leaf[2] for leaf in batch]:  # an Unhashed never equals a hash
            done = 0
            while start < checkpoints.due <= start + count:
                frontier.extend(stored[done : checkpoints.due - start])
                done = checkpoints.due - start
                checkpoints.check(frontier)
            frontier.extend(stored[done:])
            return True
    for leaf_index, stored_hash, recomputed in batch:
        if leaf_index != frontier.size:
            findings.append(
                Finding(frontier.size, f"leaves {frontier.size} to {leaf_index - 1} are missing")
            )
            return False
        if recomputed is log_rows.REMOVED:
            findings.append(Finding(leaf_index, ENTRY_REMOVED))
            recomputed = stored_hash
        elif recomputed is log_rows.UNHASHABLE:
            findings.append(Finding(leaf_index, "its entry was altered (not JSON)"))
            recomputed = stored_hash
        elif recomputed != stored_hash:
            findings.append(Finding(leaf_index, "its entry was altered or moved"))
        frontier.add(recomputed)  # type: ignore[arg-type]  # an Unhashed was replaced above
        if frontier.size == checkpoints.due:
            checkpoints.check(frontier)
    return True


async def _unsequenced(
    session: AsyncSession, before: datetime, with_entries: int | None
) -> list[Finding]:
    """Entries older than `before` that no leaf commits to: missed by the sequencer, or written
    outside the service. (Newer ones may simply not have been sequenced yet.)

    with_entries: in a walk of every leaf in this transaction's snapshot, how many leaves had
    their entry. When there are exactly as many entries up to the highest id a leaf names, each
    of them is one of those (a leaf names one entry, and no two leaves the same: audit_leaf's
    entry_id is unique, a constraint that whoever could drop it could as well give an entry a
    leaf), so only the entries after it are looked for, not the whole log's (a second at a
    million entries)."""
    query = (
        select(AuditEntry.id)
        .outerjoin(AuditLeaf, AuditLeaf.entry_id == AuditEntry.id)
        .where(AuditLeaf.leaf_index.is_(None), AuditEntry.recorded_at < before)
    )
    highest = None
    if with_entries is not None:
        highest = await session.scalar(select(func.max(AuditLeaf.entry_id)))
    if highest is not None:
        up_to = select(func.count()).select_from(AuditEntry).where(AuditEntry.id <= highest)
        if await session.scalar(up_to) == with_entries:
            query = query.where(AuditEntry.id > highest)
    ids = (await session.scalars(query.order_by(AuditEntry.id).limit(1000))).all()
    return [Finding(None, f"entry {entry_id} is in no leaf") for entry_id in ids]
