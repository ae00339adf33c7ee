"""The log's leaves with what their entries hash to now, in leaf order, for `exchange audit verify`.

Every leaf comes as (leaf_index, stored leaf hash, recomputed): recomputed is the leaf hash of
the entry's values as stored (log_tree.leaf_hash), REMOVED when no entry has the leaf's entry
id, or UNHASHABLE when the entry's values have no canonical form. Nothing here trusts the
database with a hash: every leaf hash is computed here, from the entry's stored values.

On PostgreSQL each entry's canonical document is spliced together from text (`joined`): the
database writes the ids, the time and the uuids, the details arrive as the json column's own
text, which the service writes canonical (models.CanonicalJSON), and the three free strings are
escaped here. That skips a json.loads and a canonical json.dumps per entry, most of the cost of
a verify, and the next batch is read while this one is hashed. When a spliced
document does not hash to the stored leaf, it is spliced again with the details parsed and
written canonical (details stored before they were stored canonical: the slower way, as
before); when that misses too (an entry altered, or a time outside years 1000-9999), the entry
is read again as values and hashed as everywhere else. The answer is the same either way: a
spliced document that hashes to the stored leaf is the very document the sequencer hashed (its
members are pinned in order, each by the quoting or fixed form that ends it, and the
database's text forms of ids and times are one-to-one), so the values it was spliced from are
the values that were hashed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from enum import Enum
from hashlib import sha256
from json.encoder import encode_basestring  # JSON.stringify's escapes (canonical._DUMPS's too)
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.tree import ENTRY_COLUMNS, leaf_hash
from app.storage.log_tables import AuditEntry, AuditLeaf
from app.wire.canonical import canonical_json


class Unhashed(Enum):
    REMOVED = "no entry has the leaf's entry id"
    UNHASHABLE = "the entry's values have no canonical form"


REMOVED, UNHASHABLE = Unhashed.REMOVED, Unhashed.UNHASHABLE
# A batch (about 400 bytes a leaf) fits in the socket's buffers, so the database sends the whole
# next batch while this one is hashed; at 20,000 it stalled on a full socket with the event loop
# busy hashing, and a verify of a million entries took 13 s instead of 9 (bench.log_rerun).
BATCH = 4_000

Leaf = tuple[int, bytes, bytes | Unhashed]

# An entry's document (log_tree.document) in five pieces: three strings, escaped here (their
# escapes are JSON.stringify's; to_json's cost the database as much again), and between them
# what the database writes as the document has it (its other members in RFC 8785's order, a
# uuid as its quoted text, the time as _stamp writes it with 4-digit years, the details as the
# json column's text). The split keeps either side's share of the work below the other's.
_LEAVES = """
    SELECT l.leaf_index, l.leaf_hash, e.id, e.action, e.actor_client_id,
        ',"actor_organisation_id":' || coalesce('"' || e.actor_organisation_id::text || '"', 'null')
        || ',"details":' || e.details::text || ',"id":"' || e.id::text
        || '","message_id":' || coalesce('"' || e.message_id::text || '"', 'null')
        || ',"notice_id":' || coalesce('"' || e.notice_id::text || '"', 'null')
        || ',"person_ref":',
        e.person_ref,
        ',"recorded_at":"'
        || to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        || '","subject_organisation_id":'
        || coalesce('"' || e.subject_organisation_id::text || '"', 'null') || '}'
    FROM audit_leaf l LEFT JOIN audit_entry e ON e.id = l.entry_id
    WHERE l.leaf_index > $1 ORDER BY l.leaf_index LIMIT $2
"""
# The same entries' columns as text, in `spliced`'s order, for those whose document missed.
_TEXT_LEAVES = """
    SELECT l.leaf_index, l.leaf_hash, e.id, e.action, e.actor_client_id,
        coalesce('"' || e.actor_organisation_id::text || '"', 'null'),
        e.details::text,
        coalesce('"' || e.message_id::text || '"', 'null'),
        coalesce('"' || e.notice_id::text || '"', 'null'),
        e.person_ref,
        to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        coalesce('"' || e.subject_organisation_id::text || '"', 'null')
    FROM audit_leaf l JOIN audit_entry e ON e.id = l.entry_id
    WHERE l.leaf_index = ANY($1::bigint[])
"""


def joined(row: Sequence[Any]) -> bytes:
    """An entry's canonical document from a row of _LEAVES: its pieces and strings, escaped."""
    _, _, _, action, client, middle, person, tail = row
    return (
        f'{{"action":{"null" if action is None else encode_basestring(action)},'
        f'"actor_client_id":{"null" if client is None else encode_basestring(client)}{middle}'
        f"{'null' if person is None else encode_basestring(person)}{tail}"
    ).encode()


def spliced(row: Sequence[Any], details: str | None = None) -> bytes:
    """An entry's canonical document from a row of _TEXT_LEAVES (after its first two columns),
    as _LEAVES's pieces make it; the details as stored, or as given."""
    _, _, entry_id, action, client, actor, stored, message, notice, person, at, subject = row
    details = stored if details is None else details
    return (
        f'{{"action":{"null" if action is None else encode_basestring(action)},'
        f'"actor_client_id":{"null" if client is None else encode_basestring(client)},'
        f'"actor_organisation_id":{actor},"details":{details},"id":"{entry_id}",'
        f'"message_id":{message},"notice_id":{notice},'
        f'"person_ref":{"null" if person is None else encode_basestring(person)},'
        f'"recorded_at":"{at}","subject_organisation_id":{subject}}}'
    ).encode()


def _hash(row: Sequence[Any], *, canonical: bool = False) -> bytes:
    """The leaf hash of the spliced document; canonical: with the details parsed and written
    canonical first (details stored before they were stored canonical). b"" if it cannot be
    made: the entry's values will tell why."""
    try:
        details = canonical_json(json.loads(row[6])).decode() if canonical else None
        return sha256(b"\x00" + spliced(row, details)).digest()
    except (ValueError, TypeError):  # not JSON, a number JSON cannot carry, a lone surrogate
        return b""


def _recomputed(values: Sequence[Any]) -> bytes:
    try:
        return leaf_hash(values)
    except (ValueError, TypeError):
        return UNHASHABLE


def leaves(session: AsyncSession) -> AsyncGenerator[list[Leaf], None]:
    """Every leaf, in leaf index order, in batches. Close it when done early (aclosing): a
    batch may be being read ahead on the session's connection."""
    if session.bind.dialect.name == "postgresql":
        return _document_batches(session)
    return _value_batches(session)


async def _value_batches(session: AsyncSession) -> AsyncGenerator[list[Leaf], None]:
    after = -1
    while True:
        rows = (
            await session.execute(
                select(AuditLeaf.leaf_index, AuditLeaf.leaf_hash, *ENTRY_COLUMNS)
                .outerjoin(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
                .where(AuditLeaf.leaf_index > after)
                .order_by(AuditLeaf.leaf_index)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return
        yield [
            (index, stored, REMOVED if entry[0] is None else _recomputed(entry))
            for index, stored, *entry in rows
        ]
        after = rows[-1][0]


async def _document_batches(session: AsyncSession) -> AsyncGenerator[list[Leaf], None]:
    """The next batch is read while this one is hashed: the database's share of the documents
    is written on the other core. Entries whose document misses are read again (_again)."""
    connection = (await (await session.connection()).get_raw_connection()).driver_connection
    statement = await connection.prepare(_LEAVES)

    def read(after: int) -> asyncio.Future[list[Any]]:
        return asyncio.ensure_future(statement.fetch(after, BATCH))

    def ready(rows: list[Any]) -> asyncio.Future[list[Any]]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(rows)
        return future

    reading = read(-1)
    try:
        while rows := await reading:
            reading = read(rows[-1][0])
            await asyncio.sleep(0)  # the query is sent before the hashing below holds the loop
            batch: list[Leaf] = []
            missed: dict[int, int] = {}  # leaf index -> position in batch
            for row in rows:
                index, stored = row[0], row[1]
                if row[2] is None:
                    batch.append((index, stored, REMOVED))
                    continue
                try:
                    recomputed = sha256(b"\x00" + joined(row)).digest()  # merkle.leaf_hash
                except UnicodeEncodeError:  # a lone surrogate: _again tells
                    recomputed = b""
                if recomputed != stored:
                    missed[index] = len(batch)
                batch.append((index, stored, recomputed))
            if missed:  # one statement at a time on a connection: the next batch's first
                reading = ready(await reading)
                await _again(session, connection, batch, missed=missed)
            yield batch
    finally:
        if not reading.done():
            await reading  # leave the connection free for the caller's next statement


async def _again(
    session: AsyncSession, connection: Any, batch: list[Leaf], *, missed: dict[int, int]
) -> None:
    """The leaves whose document missed: spliced from their text, as stored and with the details
    made canonical, then, if neither is the stored leaf, recomputed from the entry's values."""
    values: dict[int, int] = {}
    for row in await connection.fetch(_TEXT_LEAVES, list(missed)):
        index, stored = row[0], row[1]
        recomputed = _hash(row)
        if recomputed != stored:
            recomputed = _hash(row, canonical=True)
        if recomputed == stored:
            batch[missed[index]] = (index, stored, recomputed)
        else:
            values[index] = missed[index]
    if values:
        await _from_values(session, batch, values)


async def _from_values(session: AsyncSession, batch: list[Leaf], values: dict[int, int]) -> None:
    """These leaves (index -> position in batch) recomputed from their entries' values."""
    by_leaf = select(AuditLeaf.leaf_index, *ENTRY_COLUMNS).join(
        AuditEntry, AuditEntry.id == AuditLeaf.entry_id
    )
    rows = await session.execute(by_leaf.where(AuditLeaf.leaf_index.in_(list(values))))
    for index, *entry in rows:
        position = values.pop(index)
        batch[position] = (index, batch[position][1], _recomputed(entry))
    for index, position in values.items():  # gone since it was read
        batch[position] = (index, batch[position][1], REMOVED)
