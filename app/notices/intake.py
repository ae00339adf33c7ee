"""The use cases of a prison's notices: accept one, amend it, cancel it.

Each routes, decides, signs and queues in the caller's transaction, with a log entry for each
step, and never commits: the caller owns the transaction. A notice's body and every message's
payload are sealed before they are stored. Messages are stored unnumbered: the sequencer numbers
them in their recipients' inboxes once the caller has committed (app/messages/sequencer.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.audit import entries as audit
from app.consent import records as consents
from app.consent.decisions import body_of, decided
from app.consent.withdrawal import consent_lost
from app.keys.sealing import place
from app.messages.outbox import subscribers
from app.messages.signed import (
    DISCLOSURE,
    Context,
    Sent,
    cancel,
    held,
    retract,
    retract_held,
    store,
)
from app.notices.document import ReleaseNotice as NoticeBody
from app.notices.document import implausible
from app.storage.models import Organisation, ReleaseNotice
from app.wire.errors import Problem, invalid

ACCEPTED, NOT_ROUTED, SUPERSEDED, CANCELLED = "accepted", "not_routed", "superseded", "cancelled"
OPEN = (ACCEPTED, NOT_ROUTED)  # the states of a notice's latest version, which may change
COMMUNITY_RELEASE = "released"
# Which member of the release plan names which kind of recipient.
ROUTES = (
    ("probation_provider", "probation_provider"),
    ("substance_misuse_service", "substance_misuse_service"),
)


@dataclass(frozen=True)
class Accepted:
    notice: ReleaseNotice
    recipients: list[Sent]


async def route(
    session: AsyncSession, notice: NoticeBody
) -> tuple[list[tuple[Organisation, str]], list[dict[str, str]]]:
    """The registered, enabled organisations the release plan names, and an error for each
    code that names none."""
    wanted = [
        (member, role, getattr(notice.release_plan, member))
        for member, role in ROUTES
        if getattr(notice.release_plan, member)
    ]
    codes = {code for _, _, code in wanted}
    found = {
        o.code: o
        for o in await session.scalars(select(Organisation).where(Organisation.code.in_(codes)))
    }
    routed, errors = [], []
    for member, role, code in wanted:
        organisation = found.get(code)
        if organisation is None or organisation.kind != role or organisation.disabled_at:
            errors.append(
                {
                    "pointer": f"/release_plan/{member}",
                    "detail": f"{code!r} is not a registered {role.replace('_', ' ')}",
                }
            )
        else:
            routed.append((organisation, role))
    return routed, errors


async def accept_notice(
    session: AsyncSession,
    notice: NoticeBody,
    *,
    caller: Caller,
    context: Context,
    now: datetime,
    amends: uuid.UUID | None = None,
) -> Accepted:
    """Store a notice (or, with `amends`, a new version of one) and send what it causes."""
    errors = []  # every failing field at once, not the first stage's only
    if notice.release.prison_code != caller.organisation_code:
        errors.append(
            {
                "pointer": "/release/prison_code",
                "detail": f"you act for {caller.organisation_code}: post only its releases",
            }
        )
    errors += implausible(notice, now)
    community = notice.release.reason == COMMUNITY_RELEASE
    recipients, unrouted = await route(session, notice) if community else ([], [])
    if errors or unrouted:
        raise invalid(errors + unrouted)
    person_ref = context.data_keys.person_ref(notice.person.noms_number)
    await consents.lock_person(session, person_ref)
    previous = await _supersede(session, amends, notice, caller, context, now) if amends else None
    body = notice.model_dump(mode="json", exclude_unset=True)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    notice_id = uuid.uuid4()
    sealed = context.data_keys.seal(
        canonical.encode(), place("release_notice", "body_sealed", notice_id)
    )
    row = ReleaseNotice(
        id=notice_id,
        organisation_id=caller.organisation_id,
        series_id=previous.series_id if previous else notice_id,
        version=previous.version + 1 if previous else 1,
        supersedes_id=previous.id if previous else None,
        person_ref=person_ref,
        body_sealed=sealed.blob,
        body_key_id=sealed.key_id,
        body_sha256=audit.sha256_hex(canonical),
        status=ACCEPTED if community else NOT_ROUTED,
        status_reason=None if community else f"release_reason_{notice.release.reason}",
        received_at=now,
    )
    session.add(row)  # written by the first flush, with its consents
    actor = {
        "actor_organisation_id": caller.organisation_id,
        "actor_client_id": caller.client_id,
        "person_ref": person_ref,
    }
    audit.append(
        session,
        "notice.amended" if previous else "notice.received",
        at=now,
        notice_id=row.id,
        **actor,
        details={
            "body_sha256": row.body_sha256,
            "version": row.version,
            "supersedes": str(previous.id) if previous else None,
            "recipients": [o.code for o, _ in recipients],
        },
    )
    if not community:
        audit.append(
            session,
            "notice.not_routed",
            at=now,
            notice_id=row.id,
            **actor,
            details={"reason": row.status_reason},
        )
    holders = await held(session, row.series_id) if previous else {}
    records = await consents.record_carried(
        session, person_ref, notice.consent, caller=caller, notice_id=row.id, now=now
    )
    lost = {r.scope for r in records if r.notice_id == row.id and r.decision != "given"}
    standing = consents.standing_of(records, now)  # every record of the person, new ones too
    if previous:  # what earlier versions carried and this one does not was entered in error,
        # so a record that rested on them alone is voided; one this version or another notice
        # in force still carries, or recorded through the API, stands
        await session.flush()  # voiding reads this version and what it carries
        earlier = await session.scalars(
            select(ReleaseNotice.id).where(
                ReleaseNotice.series_id == row.series_id, ReleaseNotice.id != row.id
            )
        )
        lost |= await consents.void_unsupported(
            session, person_ref, earlier, caller=caller, now=now
        )
        standing = await consents.standing(session, person_ref, now)  # some records voided
    # A consent that no longer stands stops what relied on it; one never given (a first
    # notice's refusal, say) cannot have been relied on, and costs no search.
    for scope in sorted(lost & consents.ever_given(records)):
        await consent_lost(session, person_ref, scope, context, now, standing=standing)
    drafts = [
        decided(session, row, body, organisation, role, standing, context, now, holders)
        for organisation, role in recipients
    ]
    sent = [
        Sent(organisation, role, drafted.message.id if drafted else None)
        for (organisation, role), drafted in zip(recipients, drafts, strict=True)
    ]
    signed = [d for d in drafts if d]
    subscribed = await subscribers(session, [d.organisation.id for d in signed])
    await store(session, signed, now, subscribed=subscribed)
    if not holders:
        return Accepted(row, sent)
    # An earlier version's disclosure is replaced: not sent if it has not gone yet; and whoever
    # may hold one (that one, or one before it, if it never went) and gets nothing from this
    # version is told it no longer stands.
    disclosed_to = {s.organisation.id for s in sent if s.message_id}
    for message in holders.values():
        if message.kind != DISCLOSURE:
            continue
        if message.recipient_organisation_id in disclosed_to:  # its new message supersedes it
            await retract(session, message, now, "superseded")
        elif still := await retract_held(session, message, now, "superseded"):
            sent.append(await cancel(session, row, still, "amended_not_shared", context, now))
    return Accepted(row, sent)


async def cancel_notice(
    session: AsyncSession,
    notice_id: uuid.UUID,
    reason: str,
    *,
    caller: Caller,
    context: Context,
    now: datetime,
) -> Accepted:
    """Cancel a notice's latest version: a disclosure not yet delivered is never sent, and every
    recipient that may hold one is told. A notice entered in error takes with it the consent
    records that rested on it alone (app/consent/records.py): not those another notice in force also
    carries, nor those recorded through the API."""
    person_ref = await session.scalar(
        select(ReleaseNotice.person_ref).where(ReleaseNotice.id == notice_id)
    )
    if person_ref:
        await consents.lock_person(session, person_ref)
    row = await _close(session, notice_id, caller, CANCELLED, f"cancelled_{reason}", now)
    audit.append(
        session,
        "notice.cancelled",
        at=now,
        notice_id=row.id,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        person_ref=row.person_ref,
        details={"reason": reason, "version": row.version},
    )
    holders = await held(session, row.series_id)
    sent = []
    for message in holders.values():
        if still := await retract_held(session, message, now, "cancelled"):
            sent.append(await cancel(session, row, still, reason, context, now))
    if reason == "entered_in_error" and row.person_ref:
        versions = await session.scalars(
            select(ReleaseNotice.id).where(ReleaseNotice.series_id == row.series_id)
        )
        voided = await consents.void_unsupported(
            session, row.person_ref, versions, caller=caller, now=now
        )
        for scope in sorted(voided):
            await consent_lost(session, row.person_ref, scope, context, now)
    return Accepted(row, sent)


async def _close(
    session: AsyncSession,
    notice_id: uuid.UUID,
    caller: Caller,
    status: str,
    status_reason: str,
    now: datetime,
) -> ReleaseNotice:
    """Move the caller's latest version on from open, once: of two racing changes, one wins."""
    values: dict[str, object] = {"status": status, "status_reason": status_reason}
    if status == CANCELLED:
        values["cancelled_at"] = now
    changed = (
        await session.scalars(
            update(ReleaseNotice)
            .where(
                ReleaseNotice.id == notice_id,
                ReleaseNotice.organisation_id == caller.organisation_id,
                ReleaseNotice.status.in_(OPEN),
                ReleaseNotice.purged_at.is_(None),
            )
            .values(**values)
            .returning(ReleaseNotice)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if changed is not None:
        return changed
    existing = await session.get(ReleaseNotice, notice_id)
    if existing is None or existing.organisation_id != caller.organisation_id:
        raise Problem(404, "Not found", "No such release notice.")
    if existing.purged_at is not None:
        raise Problem(409, "Notice purged", "This notice's data was purged; post a new one.")
    latest = await session.scalar(
        select(ReleaseNotice)
        .where(ReleaseNotice.series_id == existing.series_id)
        .order_by(ReleaseNotice.version.desc())
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
    notice: NoticeBody,
    caller: Caller,
    context: Context,
    now: datetime,
) -> ReleaseNotice:
    previous = await _close(session, notice_id, caller, SUPERSEDED, "amended", now)
    earlier = body_of(context.data_keys, previous) or {}
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
