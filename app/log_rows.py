"""The log's leaves with what their entries hash to now, in leaf order, for `exchange audit verify`.

Every leaf comes as (leaf_index, stored leaf hash, recomputed): recomputed is the leaf hash of
the entry's values as stored (log_tree.leaf_hash), REMOVED when no entry has the leaf's entry
id, or UNHASHABLE when the entry's values have no canonical form. Nothing here trusts the
database with a hash: every leaf hash is computed here, from the entry's stored values.

On PostgreSQL the entries are read as text and each entry's canonical document is spliced
together (`spliced`): the database formats ids and times, the details arrive as the json
column's own text, which the service writes canonical (models.CanonicalJSON). That skips a
json.loads and a canonical json.dumps per entry, most of the cost of a verify. When a spliced
document does not hash to the stored leaf (details written before they were stored canonical,
or an entry altered), the entry is read again as values and hashed as everywhere else, so the
answer is the same either way: a spliced document that does hash to the stored leaf is the
very document the sequencer hashed (a document's fields are pinned in order, each by the
quoting or fixed form that ends it), so the values it was spliced from are the values hashed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from hashlib import sha256
from json.encoder import encode_basestring  # JSON.stringify's escapes (canonical._DUMPS's too)
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.log_tree import ENTRY_COLUMNS, leaf_hash
from app.models import AuditEntry, AuditLeaf

REMOVED = b"removed"
UNHASHABLE = b"unhashable"
BATCH = 20_000

Leaf = tuple[int, bytes, bytes]


# The columns of an entry as the pieces of its document (log_tree.document), in `spliced`'s
# order: a uuid as its quoted text or null, the time as _stamp writes it (4-digit years).
_TEXT_LEAVES = """
    SELECT l.leaf_index, l.leaf_hash, e.id, e.action, e.actor_client_id,
        coalesce('"' || e.actor_organisation_id::text || '"', 'null'),
        e.details::text,
        coalesce('"' || e.message_id::text || '"', 'null'),
        coalesce('"' || e.notice_id::text || '"', 'null'),
        e.person_ref,
        to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        coalesce('"' || e.subject_organisation_id::text || '"', 'null')
    FROM audit_leaf l LEFT JOIN audit_entry e ON e.id = l.entry_id
    WHERE l.leaf_index > $1 ORDER BY l.leaf_index LIMIT $2
"""


def spliced(row: Sequence[Any]) -> bytes:
    """An entry's canonical document from a row of _TEXT_LEAVES (after its first two columns):
    the members in RFC 8785's order, strings escaped as JSON.stringify does."""
    _, _, entry_id, action, client, actor, details, message, notice, person, at, subject = row
    return (
        f'{{"action":{"null" if action is None else encode_basestring(action)},'
        f'"actor_client_id":{"null" if client is None else encode_basestring(client)},'
        f'"actor_organisation_id":{actor},"details":{details},"id":"{entry_id}",'
        f'"message_id":{message},"notice_id":{notice},'
        f'"person_ref":{"null" if person is None else encode_basestring(person)},'
        f'"recorded_at":"{at}","subject_organisation_id":{subject}}}'
    ).encode()


def _recomputed(values: Sequence[Any]) -> bytes:
    try:
        return leaf_hash(values)
    except (ValueError, TypeError):
        return UNHASHABLE


def leaves(session: AsyncSession) -> AsyncGenerator[list[Leaf], None]:
    """Every leaf, in leaf index order, in batches. Close it when done early (aclosing): a
    batch may be being read ahead on the session's connection."""
    if session.bind.dialect.name == "postgresql":
        return _spliced_batches(session)
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


async def _spliced_batches(session: AsyncSession) -> AsyncGenerator[list[Leaf], None]:
    """The next batch is read while this one is hashed: the database formats on the other core."""
    connection = await (await session.connection()).get_raw_connection()
    statement = await connection.driver_connection.prepare(_TEXT_LEAVES)

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
            again: list[int] = []  # positions of entries to hash from their values
            for row in rows:
                stored = row[1]
                if row[2] is None:
                    batch.append((row[0], stored, REMOVED))
                    continue
                try:
                    recomputed = sha256(b"\x00" + spliced(row)).digest()
                except UnicodeEncodeError:  # a lone surrogate: its values tell why
                    recomputed = b""
                if recomputed != stored:
                    again.append(len(batch))
                batch.append((row[0], stored, recomputed))
            if again:  # one statement at a time on a connection: the next batch's first
                reading = ready(await reading)
                await _hash_values(session, batch, again)
            yield batch
    finally:
        if not reading.done():
            await reading  # leave the connection free for the caller's next statement


async def _hash_values(session: AsyncSession, batch: list[Leaf], positions: list[int]) -> None:
    """The leaves at these positions, recomputed from their entries' values."""
    ids = {}
    for position in positions:
        ids[batch[position][0]] = position
    by_leaf = select(AuditLeaf.leaf_index, *ENTRY_COLUMNS).join(
        AuditEntry, AuditEntry.id == AuditLeaf.entry_id
    )
    rows = await session.execute(by_leaf.where(AuditLeaf.leaf_index.in_(list(ids))))
    for index, *values in rows:
        position = ids.pop(index)
        batch[position] = (index, batch[position][1], _recomputed(values))
    for index, position in ids.items():  # gone since it was read
        batch[position] = (index, batch[position][1], REMOVED)
