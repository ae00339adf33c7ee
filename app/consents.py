"""A person's consent records: recorded, listed with their history, withdrawn.

The person is found by person_ref, a keyed hash of the NOMS number (app/sealing.py), so the
table names nobody. A record is never changed, except to be withdrawn once. Consent carried in a
release notice becomes a record too (the same record carried again is not repeated). Whether a
consent stands is decided by app/policy.consents_from_records over every record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.errors import Problem
from app.identity import Caller
from app.models import Consent, Disclosure, ReleaseNotice
from app.policy import consents_from_records


async def lock_person(session: AsyncSession, person_ref: str) -> None:
    """Serialise everything that reads or changes one person's consents and messages (intake,
    amendment, cancellation, consent records and withdrawals) until the transaction ends. On
    SQLite the single writer does this: a transaction becomes the writer at its first write, so
    a write that changes nothing makes it the writer now, before it reads what another writer
    may be changing."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(person_ref, 0)))
        )
    else:
        await session.execute(text("UPDATE consent SET id = id WHERE 0"))


async def know_person(session: AsyncSession, person_ref: str, caller: Caller) -> None:
    """404 unless the caller has a part in the person's notices: the prison that posted one, or
    a recipient one was decided for. Nobody else may read or change their consents."""
    if caller.kind == "prison":
        known = select(ReleaseNotice.id).where(
            ReleaseNotice.person_ref == person_ref,
            ReleaseNotice.organisation_id == caller.organisation_id,
        )
    else:
        known = (
            select(Disclosure.id)
            .join(ReleaseNotice, ReleaseNotice.id == Disclosure.notice_id)
            .where(
                ReleaseNotice.person_ref == person_ref,
                Disclosure.recipient_organisation_id == caller.organisation_id,
            )
        )
    if await session.scalar(known.limit(1)) is None:
        raise Problem(404, "Not found", "No notice about this person concerns you.")


def _as_event(record: Consent) -> dict[str, Any]:
    return {
        "scope": record.scope,
        "decision": record.decision,
        "recorded_at": record.recorded_at,
        "withdrawn_at": record.withdrawn_at,
        "expires_at": record.expires_at,
    }


async def history(session: AsyncSession, person_ref: str) -> list[Consent]:
    """Every record for the person, oldest first."""
    return list(
        (
            await session.scalars(
                select(Consent)
                .where(Consent.person_ref == person_ref)
                .order_by(Consent.recorded_at, Consent.created_at, Consent.id)
            )
        ).all()
    )


def standing_of(records: Iterable[Consent], now: datetime) -> dict[str, bool]:
    """Per scope, whether consent stands now, given every record of the person. A voided
    record (carried by a notice entered in error) never happened."""
    return consents_from_records([_as_event(r) for r in records if r.voided_at is None], now)


def ever_given(records: Iterable[Consent]) -> set[str]:
    """The scopes that any of these records gave, voided or not. A disclosure relies only on a
    consent that stood when it was decided, so, records never being deleted, nothing can rely
    on a scope outside this set of the person's records."""
    return {r.scope for r in records if r.decision == "given"}


async def standing(session: AsyncSession, person_ref: str, now: datetime) -> dict[str, bool]:
    """Per scope, whether the person's consent stands now."""
    return standing_of(await history(session, person_ref), now)


async def record(
    session: AsyncSession,
    person_ref: str,
    *,
    scope: str,
    decision: str,
    recorded_at: datetime,
    recorded_by: str,
    expires_at: datetime | None,
    caller: Caller,
    now: datetime,
    notice_id: uuid.UUID | None = None,
) -> Consent:
    row = Consent(
        id=uuid.uuid4(),
        person_ref=person_ref,
        scope=scope,
        decision=decision,
        recorded_at=recorded_at,
        recorded_by=recorded_by,
        expires_at=expires_at,
        organisation_id=caller.organisation_id,
        notice_id=notice_id,
        created_at=now,
    )
    session.add(row)
    audit.append(
        session,
        "consent.recorded",
        person_ref=person_ref,
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        notice_id=notice_id,
        details={
            "consent_id": str(row.id),
            "person_ref": person_ref,
            "scope": scope,
            "decision": decision,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return row


async def record_carried(
    session: AsyncSession,
    person_ref: str,
    carried: Iterable[Any],
    *,
    caller: Caller,
    notice_id: uuid.UUID,
    now: datetime,
) -> list[Consent]:
    """Make a record of each consent a notice carries, unless the same record already counts
    (a voided one does not); return every record of the person. The new records are written by
    the caller's next flush."""
    records = await history(session, person_ref)
    known = {
        (r.scope, r.decision, r.recorded_at, r.recorded_by) for r in records if r.voided_at is None
    }
    for item in carried:
        key = (item.scope, item.decision, item.recorded_at, item.recorded_by)
        if key in known:
            continue
        known.add(key)
        made = await record(
            session,
            person_ref,
            scope=item.scope,
            decision=item.decision,
            recorded_at=item.recorded_at,
            recorded_by=item.recorded_by,
            expires_at=None,
            caller=caller,
            now=now,
            notice_id=notice_id,
        )
        records.append(made)
    return records


async def withdraw(
    session: AsyncSession, person_ref: str, consent_id: uuid.UUID, caller: Caller, now: datetime
) -> Consent:
    """Withdraw a record, once: of two racing withdrawals, one wins and the other is a 409."""
    withdrawn = (
        await session.scalars(
            update(Consent)
            .where(
                Consent.id == consent_id,
                Consent.person_ref == person_ref,
                Consent.decision == "given",
                Consent.withdrawn_at.is_(None),
                Consent.voided_at.is_(None),
            )
            .values(withdrawn_at=now, withdrawn_by_organisation_id=caller.organisation_id)
            .returning(Consent)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if withdrawn is None:
        existing = await session.get(Consent, consent_id)
        if existing is None or existing.person_ref != person_ref:
            raise Problem(404, "Not found", "No such consent record for this person.")
        if existing.decision != "given":
            raise Problem(
                409, "Not a consent", "A refusal cannot be withdrawn: record a new decision."
            )
        raise Problem(409, "Already withdrawn", "This consent record is already withdrawn.")
    audit.append(
        session,
        "consent.withdrawn",
        person_ref=person_ref,
        at=now,
        actor_organisation_id=caller.organisation_id,
        actor_client_id=caller.client_id,
        details={
            "consent_id": str(consent_id),
            "person_ref": person_ref,
            "scope": withdrawn.scope,
        },
    )
    return withdrawn


async def void_carried(
    session: AsyncSession,
    person_ref: str,
    notice_ids: Iterable[uuid.UUID],
    *,
    keep: Iterable[tuple[Any, ...]] = (),
    caller: Caller,
    now: datetime,
) -> set[str]:
    """Void the records these notices carried (a notice entered in error, or an amendment that
    no longer carries them), except those in `keep` (scope, decision, recorded_at, recorded_by):
    unlike a withdrawal, a voided record counts as never made. Return the scopes touched."""
    kept = set(keep)
    carried = (
        await session.scalars(
            select(Consent).where(
                Consent.person_ref == person_ref,
                Consent.notice_id.in_(list(notice_ids)),
                Consent.voided_at.is_(None),
            )
        )
    ).all()
    scopes = set()
    for record in carried:
        if (record.scope, record.decision, record.recorded_at, record.recorded_by) in kept:
            continue
        record.voided_at = now
        record.withdrawn_by_organisation_id = caller.organisation_id
        scopes.add(record.scope)
        audit.append(
            session,
            "consent.voided",
            person_ref=person_ref,
            at=now,
            actor_organisation_id=caller.organisation_id,
            actor_client_id=caller.client_id,
            notice_id=record.notice_id,
            details={"consent_id": str(record.id), "person_ref": person_ref, "scope": record.scope},
        )
    await session.flush()
    return scopes
