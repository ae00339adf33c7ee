"""The use cases of a prison's notices: accept one, amend it, cancel it.

Each routes, decides, signs and queues in the caller's transaction, with a log entry for each
step, and never commits: the caller owns the transaction. A notice's body and every message's
payload are sealed before they are stored. Messages are stored unnumbered: the sequencer numbers
them in their recipients' inboxes once the caller has committed (app/messages/sequencer.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.access.identity import Caller
from app.audit import entries as audit
from app.consent import records as consents
from app.consent.decisions import body_of
from app.consent.withdrawal import consent_lost
from app.messages import retraction as retraction_io
from app.messages.outbox import subscribers
from app.messages.signed import Draft, Sent, Signing, draft, held, to_store, write
from app.notices.cancel_plan import plan_replaced
from app.notices.cancellation import Accepted, close, organisations_of, tell
from app.notices.document import ReleaseNotice
from app.notices.plan import (
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
from app.wire.errors import invalid


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
    notice_id = uuid.uuid4()
    canonical, sealed = signing.data_keys.seal_body(body, "release_notice", notice_id)
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
        session, row, holders, sent=sent, subscribed=read.subscribed, signing=signing, now=now
    )
    return Accepted(row, sent)


def _drafts(
    to_sign: Iterable[ToSign], row: StoredNotice, *, signing: Signing, now: datetime
) -> list[Draft]:
    """Sign (and seal) each message a plan sends, before anything of the plan is written."""
    return [draft(s, row, signing=signing, now=now) for s in to_sign]


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
        previous = await _supersede(
            session, amends, notice, caller=caller, signing=signing, now=now
        )
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
            signing=signing,
            now=now,
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
    *,
    sent: list[Sent],
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
    organisations = known | await organisations_of(session, set(holders) - set(known))
    told = plan_replaced(
        retraction,
        {recipient: m.id for recipient, m in holders.items()},
        disclosed_to=frozenset(s.organisation.id for s in sent if s.message_id),
        organisations=organisations,
    )
    return await tell(
        session, row, retraction, told=told, subscribed=subscribed, signing=signing, now=now
    )


async def _supersede(
    session: AsyncSession,
    notice_id: uuid.UUID,
    notice: ReleaseNotice,
    *,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> StoredNotice:
    previous = await close(
        session, notice_id, caller=caller, status=SUPERSEDED, status_reason="amended", now=now
    )
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
