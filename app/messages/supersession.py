"""Which message replaced which, in one recipient's inbox.

A disclosure of a later version of a notice, or a cancellation, names in `supersedes` the
message to the same recipient that it replaces: that message is then superseded, by the latest
message naming it. It is kept as it was (with its payload, if it may have reached its recipient)
and marked, but no longer sent. A message can be named by more than one: when its replacement is
revoked before anything was sent, its recipient holds the older one again, and the next change
replaces that. A consent withdrawal names a message too, but replaces nothing: it annotates it.

Derived, never stored: the index on message.supersedes_id answers each of these in one lookup.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Exists, ScalarSelect, exists, select

from app.storage.models import Message

REPLACING = ("disclosure", "cancellation")  # the kinds of message that replace the one named


def superseded_by(message_id: ColumnElement[Any] | Any) -> ScalarSelect[Any]:
    """The id of the latest message replacing the one whose id is `message_id` (a column of an
    enclosing query), or NULL: a scalar subquery."""
    newer = Message.__table__.alias("newer")
    return (
        select(newer.c.id)
        .where(newer.c.supersedes_id == message_id, newer.c.kind.in_(REPLACING))
        .order_by(newer.c.created_at.desc(), newer.c.stored_order.desc(), newer.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def superseded(message_id: ColumnElement[Any] | Any) -> Exists:
    """Whether a later message replaces the one whose id is `message_id`: an EXISTS."""
    newer = Message.__table__.alias("newer")
    return exists().where(newer.c.supersedes_id == message_id, newer.c.kind.in_(REPLACING))
