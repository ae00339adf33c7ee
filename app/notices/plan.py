"""What accepting a notice (or a new version of one) does, decided without a database.

plan_notice takes what intake read (the routed recipients, the person's consent records and
what carries them, the recipients' subscriptions, what they hold of the notice) and returns a
Plan: the notice's row, the consent records it makes, carries or voids, each recipient's
disclosure and the message to sign for it, the log entries, and the consent scopes lost, whose
withdrawal (app/consent/withdrawal.py) intake runs when it writes. Pure: no SQL, no web, no
clock; ids come from `new_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.access.identity import Caller
from app.audit.entry import Entry
from app.consent.plan import recorded_entry, voided_entry
from app.disclosure.explained import disclosure
from app.disclosure.policy import Policy, consents_from_records
from app.keys.sealing import Sealed
from app.messages.kinds import DISCLOSURE
from app.messages.to_sign import ToSign

ACCEPTED, NOT_ROUTED, SUPERSEDED, CANCELLED = "accepted", "not_routed", "superseded", "cancelled"
COMMUNITY_RELEASE = "released"


@dataclass(frozen=True)
class Record:
    """A consent record of the person, as stored (app/consent/records.py)."""

    id: uuid.UUID
    scope: str
    decision: str
    recorded_at: datetime
    recorded_by: str
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None
    voided_at: datetime | None = None
    notice_id: uuid.UUID | None = None  # the notice it was made from; None: through the API


@dataclass(frozen=True)
class Carrier:
    """A notice version carrying a record, and whether that version is in force now."""

    consent_id: uuid.UUID
    notice_id: uuid.UUID
    in_force: bool


@dataclass(frozen=True)
class Earlier:
    """The version an amendment replaces (closed already), and every earlier version's id."""

    id: uuid.UUID
    series_id: uuid.UUID
    version: int
    versions: frozenset[uuid.UUID]


@dataclass(frozen=True)
class Read:
    """Everything the plan needs, read in the caller's transaction under the person's lock."""

    recipients: tuple[tuple[Any, str], ...]  # (organisation, role) the release plan routes to
    records: tuple[Record, ...]  # the person's, oldest first
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]] = field(default_factory=dict)
    earlier: Earlier | None = None  # an amendment's
    carriers: tuple[Carrier, ...] = ()  # an amendment's: of the person's records
    held: Mapping[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # recipient: message id


@dataclass(frozen=True)
class Plan:
    notice: dict[str, Any]  # the release_notice row
    consents: tuple[dict[str, Any], ...]  # consent rows made from the notice
    carriers: tuple[dict[str, Any], ...]  # consent_carrier rows
    voided: tuple[uuid.UUID, ...]  # consent records no notice in force carries any more
    disclosures: tuple[dict[str, Any], ...]
    entries: tuple[Entry, ...]  # the log entries written before any withdrawal's
    decided: tuple[Entry, ...]  # the disclosures' log entries, written after
    to_sign: tuple[ToSign, ...]
    sent: tuple[tuple[Any, str, uuid.UUID | None], ...]  # (organisation, role, message id)
    withdrawals: tuple[str, ...]  # the scopes lost that something may have relied on
    standing: Mapping[str, bool]  # the person's consent per scope, once the plan is written


def standing_of(records: Iterable[Any], now: datetime) -> dict[str, bool]:
    """Per scope, whether consent stands now, given every record of the person. A voided
    record (no notice in force carries it any more) never happened."""
    return consents_from_records(
        [
            {
                "scope": r.scope,
                "decision": r.decision,
                "recorded_at": r.recorded_at,
                "withdrawn_at": r.withdrawn_at,
                "expires_at": r.expires_at,
            }
            for r in records
            if r.voided_at is None
        ],
        now,
    )


def _decision(record: Any) -> tuple[Any, ...]:
    """What makes two records one decision: the same scope and decision, recorded at the same
    instant by the same role."""
    return (record.scope, record.decision, record.recorded_at, record.recorded_by)


def carry(
    records: Iterable[Record],
    carried: Iterable[Any],
    *,
    notice_id: uuid.UUID,
    now: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> tuple[list[Record], list[tuple[uuid.UUID, Record]]]:
    """Make the notice a carrier of each decision it carries: of every record of it that is not
    voided, or of a new record made from it if there is none. The records made (in the order
    carried) and the notice's carriers, as (consent id, record)."""
    known: dict[tuple[Any, ...], list[Record]] = {}
    for r in records:
        if r.voided_at is None:
            known.setdefault(_decision(r), []).append(r)
    made: list[Record] = []
    carriers: list[tuple[uuid.UUID, Record]] = []
    linked: set[tuple[Any, ...]] = set()
    for item in carried:
        key = _decision(item)
        if key in linked:  # the notice lists the same decision twice
            continue
        linked.add(key)
        if key not in known:
            record = Record(new_id(), *key, notice_id=notice_id, expires_at=None, withdrawn_at=None)
            made.append(record)
            known[key] = [record]
        carriers += [(r.id, r) for r in known[key]]
    return made, carriers


def unsupported(
    records: Iterable[Record],
    carriers: Iterable[Carrier],
    *,
    replaced: frozenset[uuid.UUID],
    still: frozenset[uuid.UUID],
) -> list[Record]:
    """The records that only the `replaced` versions carried: made from notices (not through the
    API), not voided, carried by a replaced version and by no version in force, nor by the new
    one (`still`: the records it carries)."""
    in_force = {c.consent_id for c in carriers if c.in_force and c.notice_id not in replaced}
    here = {c.consent_id for c in carriers if c.notice_id in replaced}
    return [
        r
        for r in records
        if r.voided_at is None
        and r.notice_id is not None
        and r.id in here
        and r.id not in in_force
        and r.id not in still
    ]


def plan_notice(
    notice: Any,
    body: Mapping[str, Any],
    read: Read,
    *,
    caller: Caller,
    policy: Policy,
    now: datetime,
    person_ref: str,
    sealed: Sealed,
    body_sha256: str,
    notice_id: uuid.UUID,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Plan:
    """What accepting the notice (validated and routed already) does: see the module."""
    row = _notice_row(
        notice, read.earlier, person_ref=person_ref, sealed=sealed, sha256=body_sha256, now=now
    )
    row |= {
        "id": notice_id,
        "organisation_id": caller.organisation_id,
        "series_id": row["series_id"] or notice_id,
    }
    actor = {
        "actor_organisation_id": caller.organisation_id,
        "actor_client_id": caller.client_id,
        "person_ref": person_ref,
    }
    consents = _consents(notice, read, notice_id=notice_id, actor=actor, now=now, new_id=new_id)
    standing = standing_of(consents.records, now)
    decided = _decide(
        body, read, policy=policy, standing=standing, notice_id=notice_id, now=now, new_id=new_id
    )
    disclosures, decided_entries, to_sign, sent = decided
    return Plan(
        notice=row,
        consents=tuple(
            _consent_row(r, caller=caller, person_ref=person_ref, now=now) for r in consents.made
        ),
        carriers=tuple(
            {"consent_id": c, "notice_id": notice_id, "created_at": now}
            for c, _ in consents.carried
        ),
        voided=tuple(r.id for r in consents.voided),
        disclosures=tuple(disclosures),
        entries=(*_notice_entries(row, read, actor=actor, now=now), *consents.entries),
        decided=tuple(Entry(**{**e.__dict__, "person_ref": person_ref}) for e in decided_entries),
        to_sign=tuple(to_sign),
        sent=tuple(sent),
        withdrawals=consents.withdrawals,
        standing=standing,
    )


@dataclass(frozen=True)
class _Consents:
    """What a notice does to the person's consent records."""

    made: list[Record]  # made from the notice, for the decisions no record holds yet
    carried: list[tuple[uuid.UUID, Record]]  # the notice's carriers: (consent id, record)
    voided: list[Record]  # carried only by the versions an amendment replaces
    entries: list[Entry]  # the log entries of those made, then of those voided
    records: list[Record]  # the person's, once the plan is written: the voided ones gone
    withdrawals: tuple[str, ...]  # the scopes lost that something may have relied on


def _consents(
    notice: Any,
    read: Read,
    *,
    notice_id: uuid.UUID,
    actor: Mapping[str, Any],
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> _Consents:
    """The records the notice makes and carries, and, for an amendment, those it voids."""
    made, carried = carry(read.records, notice.consent, notice_id=notice_id, now=now, new_id=new_id)
    entries = [recorded_entry(r, now=now, **actor) for r in made]
    voided: list[Record] = []
    if read.earlier:  # what earlier versions carried and this one does not was entered in error
        voided = unsupported(
            read.records,
            read.carriers,
            replaced=read.earlier.versions,
            still=frozenset(consent_id for consent_id, _ in carried),
        )
        entries += [voided_entry(r, now=now, **actor) for r in voided]
    gone = {r.id for r in voided}
    lost = {r.scope for r in made if r.decision != "given"} | {r.scope for r in voided}
    # A lost consent never given (a first notice's refusal) cannot have been relied on.
    ever_given = {r.scope for r in [*read.records, *made] if r.decision == "given"}
    return _Consents(
        made=made,
        carried=carried,
        voided=voided,
        entries=entries,
        records=[r for r in [*read.records, *made] if r.id not in gone],
        withdrawals=tuple(sorted(lost & ever_given)),
    )


def _notice_entries(
    row: Mapping[str, Any], read: Read, *, actor: Mapping[str, Any], now: datetime
) -> list[Entry]:
    """The notice's own log entries: received (or amended), and not routed if it is not."""
    earlier = read.earlier
    entries = [
        Entry(
            "notice.amended" if earlier else "notice.received",
            at=now,
            notice_id=row["id"],
            **actor,
            details={
                "body_sha256": row["body_sha256"],
                "version": row["version"],
                "supersedes": str(earlier.id) if earlier else None,
                "recipients": [o.code for o, _ in read.recipients],
            },
        )
    ]
    if row["status"] == NOT_ROUTED:
        entries.append(
            Entry(
                "notice.not_routed",
                at=now,
                notice_id=row["id"],
                **actor,
                details={"reason": row["status_reason"]},
            )
        )
    return entries


def _decide(
    body: Mapping[str, Any],
    read: Read,
    *,
    policy: Policy,
    standing: Mapping[str, bool],
    notice_id: uuid.UUID,
    now: datetime,
    new_id: Callable[[], uuid.UUID],
) -> tuple[list[dict[str, Any]], list[Entry], list[ToSign], list[tuple[Any, str, Any]]]:
    """Each routed recipient's disclosure, log entry, message to sign (if any), and what it
    was sent."""
    rows, entries, to_sign, sent = [], [], [], []
    for organisation, role in read.recipients:
        row, entry, claims = disclosure(
            policy,
            body,
            (organisation, role),
            standing=standing,
            notice_id=notice_id,
            now=now,
            disclosure_id=new_id(),
        )
        rows.append(row)
        entries.append(entry)
        message_id = None
        if claims is not None:
            message_id = new_id()
            to_sign.append(
                ToSign(
                    DISCLOSURE,
                    message_id,
                    organisation,
                    claims,
                    disclosure_id=row["id"],
                    supersedes=read.held.get(organisation.id),
                )
            )
        sent.append((organisation, role, message_id))
    return rows, entries, to_sign, sent


def _notice_row(
    notice: Any,
    earlier: Earlier | None,
    *,
    person_ref: str,
    sealed: Sealed,
    sha256: str,
    now: datetime,
) -> dict[str, Any]:
    community = notice.release.reason == COMMUNITY_RELEASE
    return {
        "series_id": earlier.series_id if earlier else None,  # None: the notice's own id
        "version": earlier.version + 1 if earlier else 1,
        "supersedes_id": earlier.id if earlier else None,
        "person_ref": person_ref,
        "body_sealed": sealed.blob,
        "body_key_id": sealed.key_id,
        "body_sha256": sha256,
        "release_date": notice.release.release_date,
        "status": ACCEPTED if community else NOT_ROUTED,
        "status_reason": None if community else f"release_reason_{notice.release.reason}",
        "received_at": now,
        "cancelled_at": None,
        "purged_at": None,
    }


def _consent_row(
    record: Record, *, caller: Caller, person_ref: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": record.id,
        "person_ref": person_ref,
        "scope": record.scope,
        "decision": record.decision,
        "recorded_at": record.recorded_at,
        "recorded_by": record.recorded_by,
        "expires_at": None,
        "organisation_id": caller.organisation_id,
        "notice_id": record.notice_id,
        "created_at": now,
        **dict.fromkeys(("withdrawn_at", "voided_at", "withdrawn_by_organisation_id")),
    }
