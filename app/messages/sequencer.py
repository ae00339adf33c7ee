"""The inbox sequencer: each recipient's messages numbered, gap-free, in commit order.

Intake stores a message unnumbered (sequence NULL) and locks nothing of its recipient's, so
notices to one recipient are accepted side by side. The sequencer, run by the worker once a
transaction that stored messages has committed (app/worker/transactions.py `number`), gives
each committed message without a number the next number of its recipient's inbox, counted in
organisation.message_sequence. It can only see committed messages, so numbers follow the order
in which messages became visible: a message committed after another is numbered after it,
whichever was begun or created first (on PostgreSQL transactions commit out of the order in
which they began; ids and times say nothing about that). Messages that became visible between
two passes are numbered in the order they were made (created_at; one transaction's, which share
it, in the order it stored them: stored_order).

One sequencer numbers at a time: on PostgreSQL it holds an advisory lock for its transaction
(another waits for it, then numbers what committed meanwhile), and it locks the messages it numbers
(skipping any another transaction has locked: they are numbered next time); on SQLite it takes
the database's write lock before it reads. A number is given once, in the transaction that
raises the counter, so it is visible only with every lower number of its recipient: a recipient
never sees a gap, and never a number change. The inbox lists numbered messages only, and a
delivery is claimed only once its message has its number (app/messages/leases.py).
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, case, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.messages.outbox import wake_workers
from app.storage.models import Message, Organisation

# The PostgreSQL advisory lock a sequencer holds for its transaction.
SEQUENCER_LOCK = 0x6E70_735F_696E_6278  # "nps_inbx"
BATCH = 1000  # messages numbered in one transaction at most

_message = Message.__table__


async def number(session: AsyncSession, *, limit: int = BATCH) -> int:
    """Number up to `limit` committed, unnumbered messages, in the caller's transaction: how
    many it numbered (0 when there are none). On PostgreSQL the workers are told, at commit,
    that the numbered messages' deliveries are due."""
    postgresql = session.bind.dialect.name == "postgresql"
    if await session.scalar(_any_unnumbered()) is None:  # cheap, and takes no lock
        return 0
    if not await _lock(session, postgresql=postgresql):
        return 0
    waiting = (await session.execute(_unnumbered(postgresql), {"limit": limit})).all()
    if not waiting:
        return 0
    numbers = await next_sequences(session, [recipient for _, recipient in waiting])
    connection = await session.connection()
    await connection.execute(
        _numbering(),
        [{"chosen": m, "number": n} for (m, _), n in zip(waiting, numbers, strict=True)],
    )
    await wake_workers(session)
    return len(waiting)


async def _lock(session: AsyncSession, *, postgresql: bool) -> bool:
    """Take the lock that lets this transaction number, waiting for a sequencer at work (as
    long as any writer waits for a lock: lock_timeout). Waiting, not giving up, is what numbers
    a message that committed after that sequencer read: the one that waited reads after it.
    On PostgreSQL an advisory lock; on SQLite the database's write lock. Taken before anything
    is read, so that what is read is what is numbered."""
    if postgresql:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK})
        return True
    await session.execute(
        update(Organisation)
        .where(Organisation.id.is_(None))  # no row: the statement is for its lock
        .values(message_sequence=Organisation.message_sequence)
        .execution_options(synchronize_session=False)
    )
    return True


@functools.cache
def _any_unnumbered() -> Select[tuple[int]]:
    return select(text("1")).select_from(_message).where(_message.c.sequence.is_(None)).limit(1)


@functools.cache
def _unnumbered(locking: bool) -> Select[tuple[uuid.UUID, uuid.UUID]]:
    """The messages waiting for a number, oldest first (on the partial index of them); on
    PostgreSQL locked, skipping those another transaction holds (a change to one in progress)."""
    query = (
        select(_message.c.id, _message.c.recipient_organisation_id)
        .where(_message.c.sequence.is_(None))
        .order_by(_message.c.created_at, _message.c.stored_order, _message.c.id)
        .limit(bindparam("limit"))
    )
    return query.with_for_update(skip_locked=True) if locking else query


@functools.cache
def _numbering() -> Any:
    """One message's number, given only if it has none (the locks above make that certain)."""
    return (
        update(_message)
        .where(_message.c.id == bindparam("chosen"), _message.c.sequence.is_(None))
        .values(sequence=bindparam("number"))
    )


async def next_sequences(session: AsyncSession, organisation_ids: Sequence[uuid.UUID]) -> list[int]:
    """The next inbox number for each entry of organisation_ids (one organisation may appear
    more than once), in one statement that raises each one's counter by its count. The counters
    stay locked until commit, in one order (by id)."""
    wanted = Counter(organisation_ids)
    if not wanted:
        return []
    step = case(dict(wanted.items()), value=Organisation.id) if len(wanted) > 1 else wanted.total()
    locked = (
        select(Organisation.id)
        .where(Organisation.id.in_(list(wanted)))
        .order_by(Organisation.id)
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE: foreign keys' share locks pass
        .subquery()
    )
    rows = await session.execute(
        update(Organisation)
        .where(Organisation.id == locked.c.id)
        .values(message_sequence=Organisation.message_sequence + step)
        .returning(Organisation.id, Organisation.message_sequence)
        .execution_options(synchronize_session=False)
    )
    following = {o: last - wanted[o] + 1 for o, last in rows.all()}  # each one's first new number
    numbers = []
    for organisation_id in organisation_ids:
        numbers.append(following[organisation_id])
        following[organisation_id] += 1
    return numbers
