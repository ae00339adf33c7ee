"""What changes to a person's consent records do, decided without a database (pure).

The log entries of a record made, withdrawn or voided, as app/audit/entries.py writes them
(`record` is anything with a consent record's fields: app/notices/plan.Record, a row read);
and the plan of recording a decision, or withdrawing a record, through the API: the row as it
is to be stored, its log entry, and the consent that stands once it is. Records are given as
the rows read (mappings of app/storage/models.Consent's columns).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from app.access.identity import Caller
from app.audit.entry import Entry
from app.disclosure.policy import consents_from_records
from app.wire.errors import Problem

GIVEN = "given"
EVENT = ("scope", "decision", "recorded_at", "withdrawn_at", "expires_at")  # what deciding reads


@dataclass(frozen=True)
class Change:
    """A record made or withdrawn: its row as it is to be stored, its log entry, and per scope
    whether the person's consent stands once it is."""

    row: dict[str, Any]
    entry: Entry
    standing: dict[str, bool]


def standing_of(records: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, bool]:
    """Per scope, whether consent stands now, given every record of the person. A voided
    record (no notice in force carries it any more) never happened."""
    return consents_from_records(
        [{k: r[k] for k in EVENT} for r in records if r["voided_at"] is None], now
    )


def recorded(
    records: Sequence[Mapping[str, Any]],
    *,
    scope: str,
    decision: str,
    recorded_at: datetime,
    recorded_by: str,
    expires_at: datetime | None,
    person_ref: str,
    caller: Caller,
    now: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Change:
    """A decision recorded through the API, beside the person's `records`."""
    row = {
        "id": new_id(),
        "person_ref": person_ref,
        "scope": scope,
        "decision": decision,
        "recorded_at": recorded_at,
        "recorded_by": recorded_by,
        "expires_at": expires_at,
        "organisation_id": caller.organisation_id,
        "notice_id": None,
        "created_at": now,
        **dict.fromkeys(("withdrawn_at", "voided_at", "withdrawn_by_organisation_id")),
    }
    entry = recorded_entry(SimpleNamespace(**row), now=now, **_actor(caller, person_ref))
    return Change(row, entry, standing_of([*records, row], now))


def withdrawn(
    records: Sequence[Mapping[str, Any]],
    consent_id: uuid.UUID,
    *,
    person_ref: str,
    caller: Caller,
    now: datetime,
) -> Change:
    """The person's record `consent_id` withdrawn, once: 404 if the person has no such record,
    409 if it is a refusal, or withdrawn or voided already."""
    found = next((r for r in records if r["id"] == consent_id), None)
    if found is None:
        raise Problem(404, "Not found", "No such consent record for this person.")
    if found["decision"] != GIVEN:
        raise Problem(409, "Not a consent", "A refusal cannot be withdrawn: record a new decision.")
    if found["withdrawn_at"] is not None or found["voided_at"] is not None:
        raise Problem(409, "Already withdrawn", "This consent record is already withdrawn.")
    row = {**found, "withdrawn_at": now, "withdrawn_by_organisation_id": caller.organisation_id}
    entry = withdrawn_entry(SimpleNamespace(**row), now=now, **_actor(caller, person_ref))
    return Change(row, entry, standing_of([row if r is found else r for r in records], now))


def _actor(caller: Caller, person_ref: str) -> dict[str, Any]:
    return {
        "actor_organisation_id": caller.organisation_id,
        "actor_client_id": caller.client_id,
        "person_ref": person_ref,
    }


def recorded_entry(record: Any, *, now: datetime, **actor: Any) -> Entry:
    return Entry(
        "consent.recorded",
        at=now,
        notice_id=record.notice_id,
        **actor,
        details={
            "consent_id": str(record.id),
            "person_ref": actor["person_ref"],
            "scope": record.scope,
            "decision": record.decision,
            "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        },
    )


def withdrawn_entry(record: Any, *, now: datetime, **actor: Any) -> Entry:
    return Entry(
        "consent.withdrawn",
        at=now,
        **actor,
        details={
            "consent_id": str(record.id),
            "person_ref": actor["person_ref"],
            "scope": record.scope,
        },
    )


def voided_entry(record: Any, *, now: datetime, **actor: Any) -> Entry:
    return Entry(
        "consent.voided",
        at=now,
        notice_id=record.notice_id,
        **actor,
        details={
            "consent_id": str(record.id),
            "person_ref": actor["person_ref"],
            "scope": record.scope,
        },
    )
