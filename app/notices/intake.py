"""The use cases of a prison's notices: accept one, amend it, cancel it.

Each routes, decides, signs and queues in the caller's transaction, with a log entry for each
step, and never commits: the caller owns the transaction. A notice's body and every message's
payload are sealed before they are stored. Messages are stored unnumbered: the sequencer numbers
them in their recipients' inboxes once the caller has committed (app/messages/sequencer.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.access.identity import Caller
from app.audit import entries as audit
from app.consent import records as consents
from app.consent.decisions import body_of
from app.consent.withdrawal import consent_lost
from app.keys.sealing import place
from app.messages import retraction as retraction_io
from app.messages.outbox import subscribers
from app.messages.retraction_plan import Retraction
from app.messages.signed import Draft, Sent, Signing, draft, held, store, to_store, write
from app.notices.cancel_plan import ENTERED_IN_ERROR, Closed, Told, plan_cancel, plan_replaced
from app.notices.document import ReleaseNotice
from app.notices.plan import (
    ACCEPTED,
    CANCELLED,
    NOT_ROUTED,
    SUPERSEDED,
    Carrier,
    Earlier,
    Plan,
    Read,
    Record,
    ToSign,
    plan_notice,
)
from app.notices.routing import validated
from app.storage.batch import Rows
from app.storage.db import flush_pending
from app.storage.models import (
    Consent,
    ConsentCarrier,
    Disclosure,
    Message,
    Organisation,
    StoredNotice,
)
from app.wire.errors import Problem, invalid

OPEN = (ACCEPTED, NOT_ROUTED)  # the states of a notice's latest version, which may change


@dataclass(frozen=True)
class Accepted:
    notice: StoredNotice
    recipients: list[Sent]


async def accept_notice(
    session: AsyncSession,
    notice: ReleaseNotice,
    *,
    caller: Caller,
    signing: Signing,
    now: datetime,
    amends: uuid.UUID | None = None,
) -> Accepted:
    """Store a notice (or, with `amends`, a new version of one) and send what it causes. It
    reads what the decision needs (_read), plans it (app/notices/plan.py), signs what the plan
    sends, then writes the plan (_write)."""
    recipients = await validated(session, notice, caller=caller, now=now)
    person_ref = signing.data_keys.person_ref(notice.person.noms_number)
    read, holders = await _read(
        session,
        notice,
        recipients,
        person_ref=person_ref,
        amends=amends,
        caller=caller,
        signing=signing,
        now=now,
    )
    body = notice.model_dump(mode="json", exclude_unset=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    notice_id = uuid.uuid4()
    sealed = signing.data_keys.seal(
        canonical.encode(), place("release_notice", "body_sealed", notice_id)
    )
    plan = plan_notice(
        notice,
        body,
        read,
        caller=caller,
        policy=signing.policy,
        now=now,
        person_ref=person_ref,
        sealed=sealed,
        body_sha256=audit.sha256_hex(canonical),
        notice_id=notice_id,
    )
    row = StoredNotice(**plan.notice)
    make_transient_to_detached(row)  # the notice joins the session as stored (written below)
    session.add(row)
    drafts = _drafts(plan.to_sign, row, signing=signing, now=now)
    sent = [Sent(organisation, role, message_id) for organisation, role, message_id in plan.sent]
    await _write(session, plan, drafts, read=read, caller=caller, signing=signing, now=now)
    if not holders:
        return Accepted(row, sent)
    sent += await _replace_held(
        session, row, holders, sent, subscribed=read.subscribed, signing=signing, now=now
    )
    return Accepted(row, sent)


def _drafts(
    to_sign: Iterable[ToSign], row: StoredNotice, *, signing: Signing, now: datetime
) -> list[Draft]:
    """Sign (and seal) each message a plan sends, before anything of the plan is written."""
    return [
        draft(
            s.kind,
            row,
            s.organisation,
            s.claims,
            signing,
            now,
            disclosure_id=s.disclosure_id,
            supersedes=s.supersedes,
            message_id=s.message_id,
        )
        for s in to_sign
    ]


async def _read(
    session: AsyncSession,
    notice: ReleaseNotice,
    recipients: list[tuple[Organisation, str]],
    *,
    person_ref: str,
    amends: uuid.UUID | None,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> tuple[Read, dict[uuid.UUID, Message]]:
    """Under the person's lock, what the plan needs: for an amendment the version it replaces
    (closed now), what the recipients hold of the notice and what carries the person's consent
    records; the records; the recipients' subscriptions. Also the held messages themselves."""
    await consents.lock_person(session, person_ref)
    earlier, holders, carriers = None, {}, ()
    if amends:
        previous = await _supersede(session, amends, notice, caller, signing, now)
        holders = await held(session, previous.series_id)
        versions = await session.scalars(
            select(StoredNotice.id).where(StoredNotice.series_id == previous.series_id)
        )
        earlier = Earlier(previous.id, previous.series_id, previous.version, frozenset(versions))
        carriers = [Carrier(**c) for c in await consents.carriers_of(session, person_ref)]
    records = [Record(**r) for r in await consents.records_of(session, person_ref)]
    subscribed = await subscribers(session, [o.id for o, _ in recipients])
    read = Read(
        recipients=tuple(recipients),
        records=tuple(records),
        subscribed=subscribed,
        earlier=earlier,
        carriers=tuple(carriers),
        held={organisation_id: m.id for organisation_id, m in holders.items()},
    )
    return read, holders


async def _write(
    session: AsyncSession,
    plan: Plan,
    drafts: list[Draft],
    *,
    read: Read,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> None:
    """Write the plan: its rows, its messages and their deliveries, and its log entries, in one
    go (app/messages/signed.write). A consent the plan found lost is withdrawn after the
    notice's own rows and entries, before its messages are stored and its disclosures logged,
    as it was decided."""
    rows: list[Rows] = [
        (StoredNotice.__table__, [plan.notice]),
        (Consent.__table__, plan.consents),
        (ConsentCarrier.__table__, plan.carriers),
        (Disclosure.__table__, plan.disclosures),
    ]
    if plan.voided:
        await consents.void(session, plan.voided, caller=caller, now=now)
    entries = [*plan.entries, *plan.decided]
    if plan.withdrawals:
        await write(session, rows, list(plan.entries))
        person_ref = plan.notice["person_ref"]
        await consent_lost(
            session,
            person_ref,
            plan.withdrawals,
            signing,
            now,
            standing=plan.standing,
            subscribed=read.subscribed,
        )
        rows, entries = [], list(plan.decided)
    stored = to_store(session, drafts, now, subscribed=read.subscribed, logged=entries)
    await write(session, [*rows, *stored.rows()], stored.entries)


async def _replace_held(
    session: AsyncSession,
    row: StoredNotice,
    holders: dict[uuid.UUID, Message],
    sent: list[Sent],
    *,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]],
    signing: Signing,
    now: datetime,
) -> list[Sent]:
    """An earlier version's disclosure is replaced: not sent if it has not gone yet; and whoever
    may hold one (that one, or one before it, if it never went) and gets nothing from this
    version is told it no longer stands (app/notices/cancel_plan.plan_replaced). It reads the
    notice's messages and their deliveries, plans, signs, then writes. The cancellations sent."""
    await flush_pending(session)  # what a withdrawal changed of the messages it read
    subscribed = dict(subscribed) | await subscribers(session, set(holders) - set(subscribed))
    messages = await retraction_io.read_series(session, row.series_id)
    retraction = await retraction_io.locked(session, messages, now=now)
    known = {s.organisation.id: s.organisation for s in sent}
    organisations = known | await _organisations(session, set(holders) - set(known))
    told = plan_replaced(
        retraction,
        {recipient: m.id for recipient, m in holders.items()},
        disclosed_to=frozenset(s.organisation.id for s in sent if s.message_id),
        organisations=organisations,
    )
    return await _tell(
        session, row, retraction, told, subscribed=subscribed, signing=signing, now=now
    )


async def _organisations(
    session: AsyncSession, ids: set[uuid.UUID]
) -> dict[uuid.UUID, Organisation]:
    if not ids:
        return {}
    found = await session.scalars(select(Organisation).where(Organisation.id.in_(ids)))
    return {o.id: o for o in found}


async def _tell(
    session: AsyncSession,
    row: StoredNotice,
    retraction: Retraction,
    told: Told,
    *,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]],
    signing: Signing,
    now: datetime,
) -> list[Sent]:
    """Sign the plan's cancellations, then write it: deliveries stopped, messages revoked,
    the cancellations stored and queued, and the log entries, a statement per table."""
    drafts = _drafts(told.to_sign, row, signing=signing, now=now)
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
    row = await _close(session, notice_id, caller, CANCELLED, f"cancelled_{reason}", now)
    messages = await retraction_io.read_series(session, row.series_id)
    holders = {m.recipient_id for m in messages if not m.revoked}
    subscribed = await subscribers(session, holders)  # before the deliveries: lock_order.py
    retraction = await retraction_io.locked(session, messages, now=now)
    organisations = await _organisations(session, holders)
    records, carriers, versions = (), (), frozenset()
    if reason == ENTERED_IN_ERROR and row.person_ref:
        versions = frozenset(
            await session.scalars(
                select(StoredNotice.id).where(StoredNotice.series_id == row.series_id)
            )
        )
        records = [Record(**r) for r in await consents.records_of(session, row.person_ref)]
        carriers = [Carrier(**c) for c in await consents.carriers_of(session, row.person_ref)]
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
    sent = await _tell(
        session, row, retraction, plan, subscribed=subscribed, signing=signing, now=now
    )
    await consent_lost(
        session,
        row.person_ref,
        plan.lost,
        signing,
        now,
        standing=plan.standing,
        subscribed=subscribed,
    )
    return Accepted(row, sent)


async def _close(
    session: AsyncSession,
    notice_id: uuid.UUID,
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


async def _supersede(
    session: AsyncSession,
    notice_id: uuid.UUID,
    notice: ReleaseNotice,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> StoredNotice:
    previous = await _close(session, notice_id, caller, SUPERSEDED, "amended", now)
    earlier = body_of(signing.data_keys, previous) or {}
    if earlier.get("person", {}).get("noms_number") != notice.person.noms_number:
        raise invalid(
            [
                {
                    "pointer": "/person/noms_number",
                    "detail": "an amendment cannot change whose notice it is: cancel this "
                    "notice and post a new one",
                }
            ]
        )
    return previous
