"""What acknowledging a message does, decided without a database (pure): whether it may be
acknowledged so (a problem to raise if not), the acknowledgement's row and its log entry. The
note is sealed and the plan written by app/messages/acknowledgements.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.access.identity import Caller
from app.audit.entry import Entry
from app.messages.kinds import DISCLOSURE
from app.wire.errors import Problem, invalid

RECEIVED = "received"


@dataclass(frozen=True)
class Acknowledged:
    """The message acknowledged, as read (locked) with its notice."""

    id: uuid.UUID
    kind: str
    notice_id: uuid.UUID
    recipient_id: uuid.UUID
    revoked: bool
    withdrawn: bool
    purged: bool  # the message's data, or its notice's, was purged
    person_ref: str | None  # its notice's person


@dataclass(frozen=True)
class Acknowledgement:
    row: dict[str, Any]  # without the note: the caller seals it into note_sealed, note_key_id
    entry: Entry


def plan_acknowledgement(
    message: Acknowledged,
    *,
    status: str,
    with_note: bool,
    caller: Caller,
    now: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Acknowledgement:
    """One acknowledgement of the caller's own message (read as theirs already). A message
    revoked or withdrawn has nothing to acknowledge (409); only a disclosure may be more than
    `received`, and a purged one takes no note (422)."""
    if message.revoked or message.withdrawn:
        why = "revoked before delivery" if message.revoked else "withdrawn with its consent"
        raise Problem(409, "Conflict", f"This message was {why}: there is nothing to acknowledge.")
    if status != RECEIVED and message.kind != DISCLOSURE:
        raise invalid(
            [{"pointer": "/status", "detail": f"a {message.kind} message may only be received"}]
        )
    if with_note and message.purged:
        raise invalid(
            [{"pointer": "/note", "detail": "the message's data has been purged: give no note"}]
        )
    row = {
        "id": new_id(),
        "message_id": message.id,
        "organisation_id": caller.organisation_id,
        "client_id": caller.client_id,
        "status": status,
        "note_sealed": None,
        "note_key_id": None,
        "recorded_at": now,
    }
    entry = Entry(
        "acknowledgement.recorded",
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=message.notice_id,
        message_id=message.id,
        subject_organisation_id=message.recipient_id,
        person_ref=message.person_ref,
        details={
            "acknowledgement_id": str(row["id"]),
            "status": status,
            "message_kind": message.kind,
            "with_note": with_note,
        },
    )
    return Acknowledgement(row, entry)
