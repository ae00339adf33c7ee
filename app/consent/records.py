"""A person's consent records: recorded, listed with their history, withdrawn, voided.

The person is found by person_ref, a keyed hash of the NOMS number (app/keys/sealing.py), so the
table names nobody. A record is a decision the person made: its scope, `given` or `refused`,
when (`recorded_at`) and by whom it was recorded. It is never changed, except to be withdrawn or
voided, once. Whether a consent stands is decided by app/policy.consents_from_records over every
record not voided.

What a record rests on:

- Recorded through the API, it stands on its own: notices never void it.
- Carried by notices, it rests on them. Each notice version that carries a decision is a
  carrier of it (ConsentCarrier): the decision is made a record once, by the first notice to
  carry it, and a later notice carrying the same decision (scope, decision, recorded_at,
  recorded_by) becomes a carrier of every record of it that is not voided, the API's included.
- A carrier counts while its notice is in force: the latest version of its notice, and not
  cancelled as `entered_in_error`. A notice cancelled for another reason, or purged, still
  counts: the person did decide.
- A record made from notices is voided when its last carrier stops counting: a notice
  cancelled as entered in error, or amended to a version that no longer carries it, voids only
  what rested on it alone. A voided record counts as never made, and stays so: the same
  decision carried again later is a new record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import Caller
from app.consent.plan import standing_of
from app.storage.models import Consent, ConsentCarrier, Disclosure, StoredNotice
from app.wire.errors import Problem


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
        known = select(StoredNotice.id).where(
            StoredNotice.person_ref == person_ref,
            StoredNotice.organisation_id == caller.organisation_id,
        )
    else:
        known = (
            select(Disclosure.id)
            .join(StoredNotice, StoredNotice.id == Disclosure.notice_id)
            .where(
                StoredNotice.person_ref == person_ref,
                Disclosure.recipient_organisation_id == caller.organisation_id,
            )
        )
    if await session.scalar(known.limit(1)) is None:
        raise Problem(404, "Not found", "No notice about this person concerns you.")


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


async def standing(session: AsyncSession, person_ref: str, now: datetime) -> dict[str, bool]:
    """Per scope, whether the person's consent stands now."""
    return standing_of(await rows_of(session, person_ref), now)


async def rows_of(session: AsyncSession, person_ref: str) -> list[dict[str, Any]]:
    """Every record for the person, oldest first, each every column as a value (what
    app/consent/plan.py plans a change over), not as objects of the session."""
    table = Consent.__table__
    rows = await session.execute(
        select(table)
        .where(table.c.person_ref == person_ref)
        .order_by(table.c.recorded_at, table.c.created_at, table.c.id)
    )
    return [dict(row) for row in rows.mappings()]


async def record_consent(session: AsyncSession, row: Mapping[str, Any]) -> None:
    """Store a record as app/consent/plan.recorded made it: one INSERT. Its log entry is the
    caller's to write, with the rest of its own."""
    await (await session.connection()).execute(insert(Consent.__table__), [dict(row)])


RECORD_COLUMNS = (
    "id",
    "scope",
    "decision",
    "recorded_at",
    "recorded_by",
    "expires_at",
    "withdrawn_at",
    "voided_at",
    "notice_id",
)


async def records_of(session: AsyncSession, person_ref: str) -> list[dict[str, Any]]:
    """Every record for the person, oldest first, as values (what deciding needs of each), not
    as objects of the session."""
    table = Consent.__table__
    rows = await session.execute(
        select(*(table.c[name] for name in RECORD_COLUMNS))
        .where(table.c.person_ref == person_ref)
        .order_by(table.c.recorded_at, table.c.created_at, table.c.id)
    )
    return [dict(row) for row in rows.mappings()]


async def carriers_of(session: AsyncSession, person_ref: str) -> list[dict[str, Any]]:
    """What carries each of the person's records made from notices and not voided: the notice
    version, and whether it is in force now."""
    rows = await session.execute(
        select(
            ConsentCarrier.consent_id,
            ConsentCarrier.notice_id,
            _in_force().label("in_force"),
        )
        .join(StoredNotice, StoredNotice.id == ConsentCarrier.notice_id)
        .join(Consent, Consent.id == ConsentCarrier.consent_id)
        .where(
            Consent.person_ref == person_ref,
            Consent.voided_at.is_(None),
            Consent.notice_id.is_not(None),
        )
    )
    return [dict(row) for row in rows.mappings()]


async def withdraw(session: AsyncSession, row: Mapping[str, Any]) -> None:
    """Store a withdrawal as app/consent/plan.withdrawn decided it, under the person's lock
    (lock_person), which makes it once: of two withdrawals of one record, the second reads it
    withdrawn. One UPDATE; its log entry is the caller's to write, with the rest of its own."""
    table = Consent.__table__
    await (await session.connection()).execute(
        update(table)
        .where(table.c.id == row["id"])
        .values(
            withdrawn_at=row["withdrawn_at"],
            withdrawn_by_organisation_id=row["withdrawn_by_organisation_id"],
        )
    )


def _in_force() -> ColumnElement[bool]:
    """Whether a notice version still carries what it carried: it is the latest version of its
    notice and was not cancelled as entered in error (the status app/notices/intake.py sets)."""
    return and_(
        StoredNotice.status != "superseded",
        StoredNotice.status_reason.is_distinct_from("cancelled_entered_in_error"),
    )


async def void(
    session: AsyncSession, consent_ids: Iterable[uuid.UUID], *, caller: Caller, now: datetime
) -> None:
    """Void these records (app/notices/plan.unsupported found that nothing supports them any
    more), in one statement: unlike a withdrawal, a voided record counts as never made. Their
    log entries are the planner's."""
    await (await session.connection()).execute(
        update(Consent.__table__)
        .where(Consent.__table__.c.id.in_(list(consent_ids)))
        .values(voided_at=now, withdrawn_by_organisation_id=caller.organisation_id)
    )
