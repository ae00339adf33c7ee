"""A recipient's inbox: its own signed messages, in its own sequence order, each with the latest
acknowledgement the recipient gave it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body
from sqlalchemy import Select, select

from app.api.callers import RecipientReader, SubscriptionWriter
from app.api.deps import DataKeysDep, Now, Session
from app.api.pages import AfterSequence, Cursor, Limit, after, next_cursor
from app.api.problems import PROBLEMS, documented
from app.keys.jose import is_encrypted
from app.keys.sealing import DataKeys
from app.messages import acknowledgements, recovery
from app.messages.acknowledgements import Latest
from app.messages.outbox import jws_of
from app.messages.supersession import superseded_by
from app.storage.models import Message
from app.wire.errors import Problem
from app.wire.messages import LatestAcknowledgement, MessageOut, MessagePage
from app.wire.subscriptions import Redelivery, RedeliveryIn

router = APIRouter(prefix="/v1/messages", tags=["messages"])


def _with_replacement() -> Select[tuple[Message, uuid.UUID | None]]:
    """Messages, each with the id of the later message that replaced it, if one did."""
    return select(Message, superseded_by(Message.id))


def _out(
    m: Message, replaced_by: uuid.UUID | None, latest: Latest | None, *, data_keys: DataKeys
) -> MessageOut:
    token = jws_of(data_keys, m)  # signed, or signed and then encrypted to the recipient
    encrypted = token is not None and is_encrypted(token)
    acknowledged = None
    if latest is not None:
        acknowledged = LatestAcknowledgement(
            id=latest.id,
            status=latest.status,
            appointment_date=latest.appointment_date,
            recorded_at=latest.recorded_at,
            late=latest.late,
        )
    return MessageOut(
        id=m.id,
        kind=m.kind,
        notice_id=m.notice_id,
        supersedes=m.supersedes_id,
        superseded_by=replaced_by,
        sequence=m.sequence,
        created_at=m.created_at,
        jws=None if encrypted else token,
        jwe=token if encrypted else None,
        purged_at=m.purged_at,
        revoked_at=m.revoked_at,
        acknowledgement=acknowledged,
    )


@router.get("", name="list", response_model=MessagePage, responses=PROBLEMS)
async def list_messages(
    caller: RecipientReader,
    session: Session,
    data_keys: DataKeysDep,
    after_sequence: AfterSequence = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> MessagePage:
    """Messages after a sequence number (`after`, or the `cursor` of the previous page)."""
    start = max(after(after_sequence), after(cursor))
    rows = (
        await session.execute(
            _with_replacement()
            .where(
                Message.recipient_organisation_id == caller.organisation_id,
                Message.sequence > start,
            )
            .order_by(Message.sequence)
            .limit(limit)
        )
    ).all()
    latest = await acknowledgements.latest_of(session, (m.id for m, _ in rows), caller)
    return MessagePage(
        items=[
            _out(m, replaced_by, latest.get(m.id), data_keys=data_keys) for m, replaced_by in rows
        ],
        next_cursor=next_cursor([m.sequence for m, _ in rows], limit),
    )


@router.get("/{message_id}", name="get", response_model=MessageOut, responses=PROBLEMS)
async def get_message(
    message_id: uuid.UUID, caller: RecipientReader, session: Session, data_keys: DataKeysDep
) -> MessageOut:
    """One signed message. Another organisation's message does not exist, as far as you know;
    nor does one of yours until it has its number in your inbox (moments after it was made)."""
    found = (
        await session.execute(
            _with_replacement().where(
                Message.id == message_id,
                Message.recipient_organisation_id == caller.organisation_id,
                Message.sequence.is_not(None),  # in the inbox once numbered, not before
            )
        )
    ).one_or_none()
    if found is None:
        raise Problem(404, "Not found", "No such message.")
    message, replaced_by = found
    latest = await acknowledgements.latest_of(session, [message.id], caller)
    return _out(message, replaced_by, latest.get(message.id), data_keys=data_keys)


@router.post(
    "/{message_id}/redeliver",
    name="redeliver",
    status_code=202,
    response_model=Redelivery,
    responses={
        **PROBLEMS,
        409: documented(
            "The message may no longer be sent (`reason`: revoked, withdrawn, purged, or "
            "superseded, with `superseded_by` the message sent instead), or there is no active "
            "subscription to send it to."
        ),
    },
)
async def redeliver(
    message_id: uuid.UUID,
    caller: SubscriptionWriter,
    session: Session,
    now: Now,
    body: Annotated[RedeliveryIn | None, Body()] = None,
) -> Redelivery:
    """Send a message again, now, to each of your active subscriptions (or only the one named),
    with the same webhook-id: a pending delivery is made due now, else a new one is queued."""
    ids = await recovery.redeliver(
        session,
        caller,
        message_id,
        subscription_id=body.subscription_id if body else None,
        now=now,
    )
    return Redelivery(deliveries=ids)
