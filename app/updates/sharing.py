"""The use case of a care update: a recipient of a release shares one with the release's other
recipient. It reads what the decision needs, plans it (app/updates/plan.py), seals the body and
signs what the plan sends, then writes the plan in one go (app/messages/signed.write): the
update, the decisions, the messages (unnumbered) and their deliveries, and the log entries. A
recall then stops the release's open engagement deadlines; an `attended` event from the service
is recorded as its `attended` acknowledgement (app/messages/acknowledgements.py), once a day
per disclosure.
Never commits: the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.consent import records as consents
from app.deadlines.calendar import today as today_in_england_and_wales
from app.messages.acknowledgements import acknowledge
from app.messages.kinds import DISCLOSURE
from app.messages.outbox import subscribers
from app.messages.signed import RECALL_STOPS, Signing, draft, held, to_store, write
from app.storage.models import (
    Acknowledgement,
    CareUpdate,
    Deadline,
    Disclosure,
    Message,
    Organisation,
    StoredNotice,
)
from app.updates.document import CareUpdate as Document
from app.updates.plan import Holder, Plan, Read, plan_update
from app.wire.errors import Problem

RECALLED = "recalled"  # a deadline's stopped_reason once a recall closed its release


@dataclass(frozen=True)
class Shared:
    update: dict[str, Any]  # the care_update row, as written
    sent: tuple[tuple[Organisation, str, uuid.UUID | None], ...]


async def share_update(
    session: AsyncSession,
    message_id: uuid.UUID,
    update_doc: Document,
    *,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> Shared:
    """Share an update about the release of the caller's message `message_id`: see the
    module. 404 unless the message is the caller's and in its inbox."""
    series_id = await _about(session, message_id, caller)
    notice = await _in_force(session, series_id)
    body = update_doc.model_dump(mode="json", exclude_unset=True)
    read = await _read(session, notice, caller=caller, now=now)
    update_id = uuid.uuid4()
    canonical, sealed = signing.data_keys.seal_body(body, "care_update", update_id)
    plan = plan_update(
        update_doc,
        body,
        read,
        caller=caller,
        about=message_id,
        policy=signing.policy,
        today=today_in_england_and_wales(now),
        now=now,
        sealed=sealed,
        body_sha256=signing.data_keys.body_ref("care_update", canonical),  # keyed, never plain
        update_id=update_id,
    )
    await _write(session, plan, notice, read=read, signing=signing, now=now)
    for day in plan.attended:
        assert plan.acknowledged is not None
        await acknowledge(
            session,
            plan.acknowledged,
            status="attended",
            appointment_date=day,
            note=None,
            caller=caller,
            data_keys=signing.data_keys,
            now=now,
            care_update_id=update_id,
        )
    return Shared(plan.update, plan.sent)


async def _about(session: AsyncSession, message_id: uuid.UUID, caller: Caller) -> uuid.UUID:
    """The release (series) of the caller's own message, numbered; 404 otherwise, as
    everywhere: another's message is as if it did not exist."""
    found = (
        await session.execute(
            select(Message.recipient_organisation_id, Message.sequence, StoredNotice.series_id)
            .join(StoredNotice, StoredNotice.id == Message.notice_id)
            .where(Message.id == message_id)
        )
    ).one_or_none()
    if found is None or found[0] != caller.organisation_id or found[1] is None:
        raise Problem(404, "Not found", "No such message.")
    return found[2]


async def _in_force(session: AsyncSession, series_id: uuid.UUID) -> StoredNotice:
    """The release's latest version: the one in force, unless it was cancelled."""
    latest = await session.scalar(
        select(StoredNotice)
        .where(StoredNotice.series_id == series_id)
        .order_by(StoredNotice.version.desc())
        .limit(1)
    )
    assert latest is not None  # the caller's message is about one of its versions
    return latest


async def _read(
    session: AsyncSession, notice: StoredNotice, *, caller: Caller, now: datetime
) -> Read:
    """Under the person's lock: who is on the release plan and what each holds of the
    release, whether a recall closed it, the consent that stands, the days the caller's
    attendance is known, and the other recipients' subscriptions."""
    person_ref = notice.person_ref or ""
    await consents.lock_person(session, person_ref)
    routed = await session.execute(
        select(Organisation, Disclosure.recipient_role)
        .join(Disclosure, Disclosure.recipient_organisation_id == Organisation.id)
        .where(Disclosure.notice_id == notice.id, Disclosure.care_update_id.is_(None))
        .order_by(Disclosure.recipient_role)
    )
    holding = await held(session, notice.series_id)
    holders = []
    for organisation, role in routed:
        message = holding.get(organisation.id)
        holders.append(
            Holder(
                organisation,
                role,
                message.id if message else None,
                stands=bool(message and message.kind == DISCLOSURE and message.purged_at is None),
                numbered=bool(message and message.sequence is not None),
                withdrawn=bool(message and message.withdrawn_at is not None),
            )
        )
    closed_on = await session.scalar(
        select(CareUpdate.recall_date)
        .where(CareUpdate.series_id == notice.series_id, CareUpdate.recall_date.is_not(None))
        .limit(1)
    )
    mine = holding.get(caller.organisation_id)
    days = (
        []
        if mine is None
        else await session.scalars(
            select(Acknowledgement.appointment_date).where(
                Acknowledgement.message_id == mine.id,
                Acknowledgement.status == "attended",
                Acknowledgement.appointment_date.is_not(None),
            )
        )
    )
    others = [h.organisation.id for h in holders if h.organisation.id != caller.organisation_id]
    return Read(
        notice_id=notice.id,
        series_id=notice.series_id,
        status=notice.status,
        release_date=notice.release_date,
        person_ref=person_ref,
        closed_on=closed_on,
        holders=tuple(holders),
        standing=await consents.standing(session, person_ref, now),
        attended=frozenset(days),
        subscribed=await subscribers(session, others),
    )


async def _write(
    session: AsyncSession,
    plan: Plan,
    notice: StoredNotice,
    *,
    read: Read,
    signing: Signing,
    now: datetime,
) -> None:
    """Sign what the plan sends, then write the update, its decisions, its messages and their
    deliveries, and the log entries, in one go; then a recall's deadlines stopped."""
    drafts = [draft(s, notice, signing=signing, now=now) for s in plan.to_sign]
    stored = to_store(session, drafts, now, subscribed=read.subscribed, logged=plan.entries)
    rows = [
        (CareUpdate.__table__, [plan.update]),
        (Disclosure.__table__, list(plan.disclosures)),
        *stored.rows(),
    ]
    await write(session, rows, stored.entries)
    if plan.recall is not None:
        await session.execute(
            update(Deadline)
            .where(
                and_(
                    Deadline.series_id == read.series_id,
                    Deadline.kind.in_(RECALL_STOPS),
                    Deadline.met_at.is_(None),
                    Deadline.stopped_at.is_(None),
                    Deadline.alerted_at.is_(None),
                )
            )
            .values(stopped_at=now, stopped_reason=RECALLED)
        )
