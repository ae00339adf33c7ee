"""Cancelling a notice, and what any change of a notice needs: closing its latest version, and
telling the recipients who may hold what no longer stands (a cancellation message).

Like intake (app/notices/intake.py), a cancellation reads, plans (app/notices/cancel_plan.py),
signs, then writes, in the caller's transaction, and never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.consent import records as consents
from app.consent.withdrawal import consent_lost
from app.messages import retraction as retraction_io
from app.messages.outbox import subscribers
from app.messages.retraction_plan import Retraction
from app.messages.signed import Sent, Signing, draft, store
from app.notices.cancel_plan import ENTERED_IN_ERROR, Closed, Told, plan_cancel
from app.notices.plan import ACCEPTED, CANCELLED, NOT_ROUTED, Carrier, Record
from app.storage.models import Organisation, StoredNotice
from app.wire.errors import Problem

OPEN = (ACCEPTED, NOT_ROUTED)  # the states of a notice's latest version, which may change


@dataclass(frozen=True)
class Accepted:
    """What a change of a notice answers with: the version stored or changed, and the messages
    it sent (app/api/notices.py)."""

    notice: StoredNotice
    recipients: list[Sent]


async def organisations_of(
    session: AsyncSession, ids: set[uuid.UUID]
) -> dict[uuid.UUID, Organisation]:
    if not ids:
        return {}
    found = await session.scalars(select(Organisation).where(Organisation.id.in_(ids)))
    return {o.id: o for o in found}


async def tell(
    session: AsyncSession,
    row: StoredNotice,
    retraction: Retraction,
    *,
    told: Told,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]],
    signing: Signing,
    now: datetime,
) -> list[Sent]:
    """Sign the plan's cancellations, then write it: deliveries stopped, messages revoked,
    the cancellations stored and queued, and the log entries, a statement per table."""
    drafts = [draft(s, row, signing=signing, now=now) for s in told.to_sign]
    await retraction_io.write(session, retraction)
    await store(session, drafts, now, subscribed=subscribed, logged=told.entries)
    return [Sent(s.organisation, s.organisation.kind, s.message_id, s.kind) for s in told.to_sign]


async def cancel_notice(
    session: AsyncSession,
    notice_id: uuid.UUID,
    reason: str,
    *,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> Accepted:
    """Cancel a notice's latest version: a disclosure not yet delivered is never sent, and every
    recipient that may hold one is told. A notice entered in error takes with it the consent
    records that rested on it alone (app/consent/records.py): not those another notice in force
    also carries, nor those recorded through the API. Under the person's lock it closes the
    version, reads what the plan needs (app/notices/cancel_plan.plan_cancel), signs the
    cancellations, then writes the plan; a lost consent is then withdrawn."""
    person_ref = await session.scalar(
        select(StoredNotice.person_ref).where(StoredNotice.id == notice_id)
    )
    if person_ref:
        await consents.lock_person(session, person_ref)
    closing = {"status": CANCELLED, "status_reason": f"cancelled_{reason}"}
    row = await close(session, notice_id, caller=caller, now=now, **closing)
    messages = await retraction_io.read_series(session, row.series_id, with_updates=True)
    holders = {m.recipient_id for m in messages if not m.revoked}
    subscribed = await subscribers(session, holders)  # before the deliveries: lock_order.py
    retraction = await retraction_io.locked(session, messages, now=now)
    organisations = await organisations_of(session, holders)
    versions, records, carriers = frozenset(), [], []
    if reason == ENTERED_IN_ERROR and row.person_ref:
        versions, records, carriers = await _carried(session, row)
    plan = plan_cancel(
        Closed(row.id, row.version, row.person_ref, versions),
        retraction,
        reason=reason,
        caller=caller,
        organisations=organisations,
        records=records,
        carriers=carriers,
        now=now,
    )
    if plan.voided:
        await consents.void(session, plan.voided, caller=caller, now=now)
    sent = await tell(
        session, row, retraction, told=plan, subscribed=subscribed, signing=signing, now=now
    )
    await consent_lost(
        session,
        row.person_ref,
        plan.lost,
        signing=signing,
        now=now,
        standing=plan.standing,
        subscribed=subscribed,
    )
    return Accepted(row, sent)


async def _carried(
    session: AsyncSession, row: StoredNotice
) -> tuple[frozenset[uuid.UUID], list[Record], list[Carrier]]:
    """What a notice entered in error may take with it: its versions, the person's consent
    records, and what carries each."""
    versions = await session.scalars(
        select(StoredNotice.id).where(StoredNotice.series_id == row.series_id)
    )
    records = [Record(**r) for r in await consents.records_of(session, row.person_ref)]
    carriers = [Carrier(**c) for c in await consents.carriers_of(session, row.person_ref)]
    return frozenset(versions), records, carriers


async def close(
    session: AsyncSession,
    notice_id: uuid.UUID,
    *,
    caller: Caller,
    status: str,
    status_reason: str,
    now: datetime,
) -> StoredNotice:
    """Move the caller's latest version on from open, once: of two racing changes, one wins."""
    values: dict[str, object] = {"status": status, "status_reason": status_reason}
    if status == CANCELLED:
        values["cancelled_at"] = now
    changed = (
        await session.scalars(
            update(StoredNotice)
            .where(
                StoredNotice.id == notice_id,
                StoredNotice.organisation_id == caller.organisation_id,
                StoredNotice.status.in_(OPEN),
                StoredNotice.purged_at.is_(None),
            )
            .values(**values)
            .returning(StoredNotice)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if changed is not None:
        return changed
    existing = await session.get(StoredNotice, notice_id)
    if existing is None or existing.organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such release notice.")
    if existing.purged_at is not None:
        raise Problem(409, "Notice purged", "This notice's data was purged; post a new one.")
    latest = await session.scalar(
        select(StoredNotice)
        .where(StoredNotice.series_id == existing.series_id)
        .order_by(StoredNotice.version.desc())
        .limit(1)
    )
    detail = f"This version is {existing.status}"
    extra = {"notice_status": existing.status}
    if latest is not None and latest.id != existing.id:
        detail += f"; the latest version is {latest.id}, which is {latest.status}"
        extra["latest_version"] = str(latest.id)
    raise Problem(409, "Notice closed", detail + ".", extra=extra)
