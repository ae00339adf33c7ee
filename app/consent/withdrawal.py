"""When a consent stops standing (withdrawn, refused anew, or voided: app/consent/records.py), it
takes effect at once, in the caller's transaction.

Every disclosure message about the person that relied on that consent (it would have sent less
without it) is revoked and decided again, or its recipient, which may hold it, is told: the
pure planner (app/consent/withdrawal_plan.py) says which. This module reads what the planner
needs (the relying messages with their recipients; the recipients' subscriptions, then the
messages' deliveries, locked: app/messages/lock_order.py; the bodies of the notices decided
again), signs what the plan sends, and writes the plan, a statement per table.

Withdrawing a record and recording a decision through the API read the person's records, plan
the change (app/consent/plan.py), read and plan what it takes back, then write both.

Later notices respect it because every decision reads the person's records. The caller holds
the person's lock (records.lock_person), so no notice for them is decided meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.access.identity import Caller
from app.audit import entries as audit
from app.audit.entry import Entry
from app.consent import plan as changes
from app.consent import records as consents
from app.consent.decisions import body_of
from app.consent.withdrawal_plan import Lost, Relying, Taken, plan_withdrawal, to_decide
from app.disclosure.explained import update_claims
from app.keys.sealing import DataKeys, SealError
from app.messages import retraction
from app.messages.kinds import CANCELLATION, CARE_UPDATE, DISCLOSURE
from app.messages.outbox import subscribers
from app.messages.retraction_plan import Held
from app.messages.signed import Draft, Signing, draft, held, store
from app.storage.models import (
    CareUpdate,
    Consent,
    Disclosure,
    Message,
    Organisation,
    StoredNotice,
)

log = logging.getLogger("exchange.withdrawal")
ACCEPTED = "accepted"  # the status of a notice's latest version that may be decided again


@dataclass
class Effects:
    revoked: list[uuid.UUID] = field(default_factory=list)
    redisclosed: list[uuid.UUID] = field(default_factory=list)
    notified: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Withdrawal:
    consent: Consent  # as stored now; not in the session
    effects: Effects


@dataclass(frozen=True)
class Taking:
    """What a lost consent takes back, planned and signed, to write: `taken` is None if
    nothing relied on it."""

    taken: Taken | None = None
    drafts: tuple[Draft, ...] = ()
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)


async def withdraw_consent(
    session: AsyncSession,
    noms_number: str,
    consent_id: uuid.UUID,
    *,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> Withdrawal:
    """Withdraw one of the person's records (app/consent/plan.withdrawn says whether it can
    be), and take back what relied on it if the consent no longer stands."""
    person_ref = signing.data_keys.person_ref(noms_number)
    await consents.lock_person(session, person_ref)
    await consents.know_person(session, person_ref, caller)
    records = await consents.rows_of(session, person_ref)
    change = changes.withdrawn(records, consent_id, person_ref=person_ref, caller=caller, now=now)
    scope = change.row["scope"]
    taking = await taking_back(
        session, person_ref, [scope], standing=change.standing, signing=signing, now=now
    )
    await consents.withdraw(session, change.row)
    effects = await take_back(session, taking, now=now, logged=[change.entry])
    return Withdrawal(Consent(**change.row), effects)


async def record_decision(
    session: AsyncSession,
    noms_number: str,
    *,
    scope: str,
    decision: str,
    recorded_at: datetime,
    recorded_by: str,
    expires_at: datetime | None,
    caller: Caller,
    signing: Signing,
    now: datetime,
) -> Consent:
    """Record a consent decision; a refusal takes effect at once, as a withdrawal does. The
    record is returned as stored, not in the session."""
    person_ref = signing.data_keys.person_ref(noms_number)
    await consents.lock_person(session, person_ref)
    await consents.know_person(session, person_ref, caller)
    change = changes.recorded(
        await consents.rows_of(session, person_ref),
        scope=scope,
        decision=decision,
        recorded_at=recorded_at,
        recorded_by=recorded_by,
        expires_at=expires_at,
        person_ref=person_ref,
        caller=caller,
        now=now,
    )
    taking = await taking_back(
        session, person_ref, [scope], standing=change.standing, signing=signing, now=now
    )
    await consents.record_consent(session, change.row)
    await take_back(session, taking, now=now, logged=[change.entry])
    return Consent(**change.row)


async def consent_lost(
    session: AsyncSession,
    person_ref: str,
    scopes: Iterable[str],
    *,
    signing: Signing,
    now: datetime,
    standing: Mapping[str, bool] | None = None,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]] | None = None,
) -> Effects:
    """Deal with every message that relied on one of `scopes` whose consent does not stand now
    (another record may still give it), scope by scope. `standing` is the person's standing
    consent now, if the caller has read it since the last change to their records;
    `subscribed`, what app/messages/outbox.subscribers found in this transaction."""
    if standing is None:
        standing = await consents.standing(session, person_ref, now)
    taking = await taking_back(
        session,
        person_ref,
        scopes,
        standing=standing,
        signing=signing,
        now=now,
        subscribed=subscribed,
    )
    return await take_back(session, taking, now=now)


async def taking_back(
    session: AsyncSession,
    person_ref: str,
    scopes: Iterable[str],
    *,
    standing: Mapping[str, bool],
    signing: Signing,
    now: datetime,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]] | None = None,
) -> Taking:
    """Read what losing the scopes that do not stand takes back, plan it, and sign what the
    plan sends; nothing is written yet (take_back writes it)."""
    lost = tuple(s for s in scopes if not standing.get(s))
    if not lost:
        return Taking()
    relying, notices, organisations, updates = await _relying(session, person_ref, lost)
    if not relying:
        return Taking()
    subscribed = dict(subscribed or {})  # read before the deliveries are locked: lock_order.py
    recipients = {r.message.recipient_id for r in relying}
    subscribed |= await subscribers(session, recipients - set(subscribed))
    deliveries = await retraction.locked_deliveries(session, [r.message for r in relying])
    read = Lost(person_ref, lost, tuple(relying), tuple(deliveries), organisations, standing)
    decided = {**notices, **updates}
    bodies = _bodies(signing.data_keys, [decided[n] for n in to_decide(read, now=now)])
    taken = plan_withdrawal(read, bodies=bodies, policy=signing.policy, now=now)
    return Taking(taken, _drafts(taken, notices, signing=signing, now=now), subscribed)


async def take_back(
    session: AsyncSession, taking: Taking, *, now: datetime, logged: Iterable[Entry] = ()
) -> Effects:
    """Write what taking_back planned and signed: deliveries stopped and messages revoked, the
    messages withdrawn, the disclosures decided again, then the signed messages stored and
    queued with every log entry (`logged`, the caller's, first), a statement per table."""
    taken = taking.taken
    if taken is None:
        await audit.append_many(session, list(logged))
        return Effects()
    await retraction.write(session, taken.retraction)
    connection = await session.connection()
    if taken.withdrawn:
        message = Message.__table__
        await connection.execute(
            update(message).where(message.c.id.in_(taken.withdrawn)).values(withdrawn_at=now)
        )
    if taken.disclosures:
        await connection.execute(insert(Disclosure.__table__), list(taken.disclosures))
    entries = [*logged, *taken.entries]
    await store(session, taking.drafts, now, subscribed=taking.subscribed, logged=entries)
    return Effects(list(taken.revoked), list(taken.redisclosed), list(taken.notified))


_MADE = (Message.created_at, Message.stored_order, Message.id)  # a recipient's, in order


async def _relying(
    session: AsyncSession, person_ref: str, scopes: tuple[str, ...]
) -> tuple[
    list[Relying],
    dict[uuid.UUID, StoredNotice],
    dict[uuid.UUID, Organisation],
    dict[uuid.UUID, CareUpdate],
]:
    """The person's disclosure messages (and care updates' messages) that relied on any of the
    scopes and were not yet revoked, withdrawn or purged, per recipient in the order made, each
    with whether it still stands (nothing newer replaced it); their notices, their recipients
    and the care updates they came of."""
    newer = aliased(Message)
    replaced = exists().where(
        and_(
            newer.supersedes_id == Message.id,
            newer.kind.in_((DISCLOSURE, CANCELLATION, CARE_UPDATE)),
            newer.revoked_at.is_(None),
        )
    )
    author = aliased(Organisation)
    rows = await session.execute(
        select(Message.id, Message.kind, Message.notice_id, Message.recipient_organisation_id)
        .add_columns(Disclosure.recipient_role, Disclosure.consents_relied, ~replaced)
        .add_columns(StoredNotice, Organisation, CareUpdate, author.code)
        .join(Disclosure, Disclosure.id == Message.disclosure_id)
        .join(StoredNotice, StoredNotice.id == Message.notice_id)
        .join(Organisation, Organisation.id == Message.recipient_organisation_id)
        .outerjoin(CareUpdate, CareUpdate.id == Disclosure.care_update_id)
        .outerjoin(author, author.id == CareUpdate.organisation_id)
        .where(
            StoredNotice.person_ref == person_ref,
            Message.kind.in_((DISCLOSURE, CARE_UPDATE)),
            Message.revoked_at.is_(None),
            Message.withdrawn_at.is_(None),
            Message.purged_at.is_(None),
        )
        .order_by(Message.recipient_organisation_id, *_MADE)
    )
    relying, notices, organisations, updates = [], {}, {}, {}
    releases: dict[uuid.UUID, dict[uuid.UUID, bool]] = {}
    for message_id, kind, notice_id, recipient_id, role, relied_on, stands, *rest in rows:
        notice, organisation, update, author_code = rest
        relied = frozenset(relied_on or ())
        if relied.isdisjoint(scopes):
            continue
        held = Held(message_id, kind, notice_id, recipient_id)
        is_open = notice.status == ACCEPTED and notice.purged_at is None
        found = Relying(held, role, relied, bool(stands), is_open)
        if update is not None:
            found = await _of_update(
                session, found, update, author_code=author_code, releases=releases
            )
            updates[update.id] = update
        relying.append(found)
        notices[notice.id], organisations[organisation.id] = notice, organisation
    return relying, notices, organisations, updates


async def _of_update(
    session: AsyncSession,
    found: Relying,
    update: CareUpdate,
    *,
    author_code: str,
    releases: dict[uuid.UUID, dict[uuid.UUID, bool]],
) -> Relying:
    """A care update's relying message: open as its release is now (`releases` keeps what was
    read per release), with what it says of the update."""
    if update.series_id not in releases:
        releases[update.series_id] = await _on_open_release(session, update.series_id)
    is_open = releases[update.series_id].get(found.message.recipient_id, False)
    return replace(found, open=is_open, update=update.id, about_update=_about(update, author_code))


async def _on_open_release(session: AsyncSession, series_id: uuid.UUID) -> dict[uuid.UUID, bool]:
    """Per recipient, whether a care update about this release may be decided again for it:
    the release's version in force (not the one the update was written against) is accepted
    and not purged, no recall closed the release, and the recipient holds a disclosure of the
    release (not a cancellation, not purged). Whether the consent that stands still routes it
    there is the plan's to say."""
    latest = await session.scalar(
        select(StoredNotice)
        .where(StoredNotice.series_id == series_id)
        .order_by(StoredNotice.version.desc())
        .limit(1)
    )
    recalled = await session.scalar(
        select(CareUpdate.id)
        .where(CareUpdate.series_id == series_id, CareUpdate.recall_date.is_not(None))
        .limit(1)
    )
    if latest is None or latest.status != ACCEPTED or latest.purged_at or recalled is not None:
        return {}
    return {
        recipient: message.kind == DISCLOSURE and message.purged_at is None
        for recipient, message in (await held(session, series_id)).items()
    }


def _about(update: CareUpdate, author_code: str) -> dict[str, Any]:
    """What a care update's message says of the update, as when it was first sent."""
    return update_claims(
        update_id=update.id,
        series_id=update.series_id,
        author_code=author_code,
        author_role=update.author_role,
        recorded_at=update.recorded_at,
    )


def _bodies(
    data_keys: DataKeys, decided: Iterable[StoredNotice | CareUpdate]
) -> dict[uuid.UUID, dict[str, Any] | None]:
    """The notices' (and care updates') bodies, opened. One that cannot be opened (its data key
    is lost) is left out and logged: it must not stop the withdrawal itself."""
    bodies = {}
    for found in decided:
        try:
            bodies[found.id] = body_of(data_keys, found)
        except SealError as exc:
            log.error("%s %s cannot be decided again: %s", found.__tablename__, found.id, exc)
    return bodies


def _drafts(
    taken: Taken, notices: Mapping[uuid.UUID, StoredNotice], *, signing: Signing, now: datetime
) -> tuple[Draft, ...]:
    """Sign (and seal) each message the plan sends, before anything of it is written."""
    return tuple(draft(s, notices[s.notice_id], signing=signing, now=now) for s in taken.to_sign)
