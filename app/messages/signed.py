"""Signed messages to recipients: made, sealed, stored and queued for delivery.

A message is a disclosure (what the policy lets one recipient see of one notice version), a
cancellation (a disclosure it held no longer stands), or a consent withdrawal (a disclosure it
holds relied on a consent the person has withdrawn). Each is a JWS signed with the exchange's
current key (and then a JWE encrypted to the recipient's key, if it registered one), sealed at
rest, stored and queued in the caller's transaction. It is stored unnumbered: the sequencer
gives it its number in the recipient's inbox once the transaction has committed
(app/messages/sequencer.py), so intake locks nothing of the recipient's. Which message is a
recipient's latest is told, here, by the order messages are made in (`made_in_order`), which
exists before the number does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import entries as audit
from app.deadlines.calendar import end_of
from app.deadlines.rules import AT_RISK, ENGAGEMENT, Windows, claims_of, due_days
from app.deadlines.rules import row as deadline_row
from app.disclosure.policy import Policy
from app.keys import jose
from app.keys.recipient_keys import RecipientKeys
from app.keys.sealing import DataKeys, place
from app.messages import outbox
from app.messages.kinds import CANCELLATION, DISCLOSURE, TYP
from app.messages.to_sign import ToSign
from app.storage.batch import Rows, insert_all
from app.storage.db import flush_pending
from app.storage.log_tables import AuditEntry
from app.storage.models import (
    CareUpdate,
    Deadline,
    Delivery,
    Message,
    Organisation,
    StoredNotice,
)

RECALL_STOPS = (ENGAGEMENT, AT_RISK)  # the deadlines a recall stops, and no longer opens

STORED = "exchange.messages.stored"  # session.info: how many messages the session has stored


@dataclass(frozen=True)
class Signing:
    """What the use cases need from the running exchange, built once in create_app."""

    policy: Policy
    keyring: jose.KeyRing
    data_keys: DataKeys
    issuer: str
    # Recipients' encryption keys, each parsed once (on first use, never at import time).
    recipient_keys: RecipientKeys = field(default_factory=RecipientKeys)
    # The deadlines' windows (the settings' receipt_working_days and engagement_days).
    windows: Windows = field(default_factory=Windows)


@dataclass(frozen=True)
class Sent:
    organisation: Organisation
    role: str
    message_id: uuid.UUID | None
    kind: str = DISCLOSURE


def made_in_order() -> tuple[ColumnElement[Any], ...]:
    """The order in which a recipient's messages about one notice were made, for a query that
    joins StoredNotice: by version of the notice, then by time made, then in the order its
    transaction stored them (which share the time), then by id."""
    return (StoredNotice.version, Message.created_at, Message.stored_order, Message.id)


async def held(session: AsyncSession, series_id: uuid.UUID) -> dict[uuid.UUID, Message]:
    """Per recipient, the latest message it holds about any version of this notice: a
    disclosure or a cancellation. A revoked message was never sent, and a consent withdrawal
    only annotates the disclosure it names: neither is what a recipient holds."""
    messages = await session.scalars(
        select(Message)
        .join(StoredNotice, StoredNotice.id == Message.notice_id)
        .where(
            StoredNotice.series_id == series_id,
            Message.kind.in_((DISCLOSURE, CANCELLATION)),
            Message.revoked_at.is_(None),
        )
        .order_by(*made_in_order())
    )
    return {m.recipient_organisation_id: m for m in messages}


@dataclass(frozen=True)
class Draft:
    """A message signed (and encrypted and sealed), not yet stored or queued."""

    message: Message  # unnumbered: the sequencer numbers it after commit
    organisation: Organisation
    jws: str
    sent: str  # the JWS, or the JWE of it the recipient gets
    kid: str
    encrypted_to: str | None
    deadlines: tuple[dict[str, Any], ...] = ()  # a disclosure's: the deadline rows


def draft(message: ToSign, notice: StoredNotice, *, signing: Signing, now: datetime) -> Draft:
    """Sign a message a plan sends about `notice` (then encrypt it, if the recipient has an
    encryption key now) and seal it, under the id the plan gave it. A disclosure states its
    deadlines (app/deadlines/rules.py), from now, when it is stored and first available."""
    organisation = message.organisation
    due = {}
    if message.kind == DISCLOSURE:
        due = due_days(
            organisation.kind,
            release_date=notice.release_date,
            available_at=now,
            windows=signing.windows,
        )
    signed = {
        "iss": signing.issuer,
        "aud": organisation.code,
        "iat": int(now.timestamp()),
        "jti": str(message.message_id),
        "notice_id": str(notice.id),
        **({"supersedes": str(message.supersedes)} if message.supersedes else {}),
        **message.claims,
        **({"deadlines": claims_of(due)} if due else {}),
    }
    jws = jose.sign(signing.keyring, signed, typ=TYP[message.kind])
    recipient_key = organisation.encryption_jwk
    sent = jose.encrypt(signing.recipient_keys, jws, recipient_key) if recipient_key else jws
    where = place("message", "jws_sealed", message.message_id)
    sealed = signing.data_keys.seal(sent.encode(), where)
    row = Message(
        id=message.message_id,
        kind=message.kind,
        notice_id=notice.id,
        disclosure_id=message.disclosure_id,
        supersedes_id=message.supersedes,
        recipient_organisation_id=organisation.id,
        jws_sealed=sealed.blob,
        jws_key_id=sealed.key_id,
        created_at=now,
    )
    encrypted_to = recipient_key["kid"] if recipient_key else None
    deadlines = tuple(
        deadline_row(
            kind,
            message_id=row.id,
            notice_id=notice.id,
            series_id=notice.series_id,
            owner_id=organisation.id,
            due_on=day,
            due_at=end_of(day),
            now=now,
        )
        for kind, day in due.items()
    )
    return Draft(row, organisation, jws, sent, signing.keyring.current.kid, encrypted_to, deadlines)


@dataclass(frozen=True)
class ToStore:
    """What storing drafted messages writes: the messages (unnumbered), one pending delivery
    per subscription of each one's recipient, and the log entries, the caller's first."""

    messages: list[Message]
    deliveries: list[dict[str, Any]]
    entries: list[audit.Entry]
    deadlines: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> list[Rows]:
        """The rows to insert, table by table (app/storage/batch.py), the log's last."""
        return [
            (Message.__table__, [_columns(m) for m in self.messages]),
            (Delivery.__table__, self.deliveries),
            (Deadline.__table__, self.deadlines),
        ]


def to_store(
    session: AsyncSession,
    drafts: Iterable[Draft],
    now: datetime,
    *,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]],
    logged: Iterable[audit.Entry] = (),
) -> ToStore:
    """What storing the drafts writes, with nothing written yet: each message gets its place in
    the order the session stores messages in (`stored_order`), and is logged as signed; each
    delivery is logged as queued. `logged` are the caller's entries, to be written first."""
    messages, entries, deadlines = [], list(logged), []
    stored = session.info.get(STORED, 0)  # how many this session has stored before
    for order, drafted in enumerate(drafts, start=stored):
        message = drafted.message
        message.stored_order = order
        messages.append(message)
        entries.append(_signed_entry(drafted, now))
        deadlines += drafted.deadlines
    session.info[STORED] = stored + len(messages)
    deliveries, queued = outbox.deliveries_of(messages, now, subscribed)
    return ToStore(messages, deliveries, [*entries, *queued], deadlines)


def _signed_entry(drafted: Draft, now: datetime) -> audit.Entry:
    message = drafted.message
    encrypted = (
        {"encrypted_to": drafted.encrypted_to, "jwe_sha256": audit.sha256_hex(drafted.sent)}
        if drafted.encrypted_to
        else {}
    )
    return audit.about_message(
        message,
        "message.signed",
        at=now,
        details={
            "kind": message.kind,
            "kid": drafted.kid,
            "jws_sha256": audit.sha256_hex(drafted.jws),
            "supersedes": str(message.supersedes_id) if message.supersedes_id else None,
            **encrypted,
        },
    )


async def write(session: AsyncSession, rows: Iterable[Rows], entries: list[audit.Entry]) -> None:
    """Write a plan's rows and then its log entries, as few statements as the database allows
    (app/storage/batch.py), what the session holds pending first. Entries about a notice the
    session does not hold read its person from its row, in a statement of their own after."""
    rows = list(rows)
    new = {
        r["series_id"]
        for t, added in rows
        if t is StoredNotice.__table__
        for r in added
        if r["version"] == 1
    }  # a release first written here: no recall closed it yet
    rows = [
        (t, await _of_open_releases(session, added, new) if t is Deadline.__table__ else added)
        for t, added in rows
    ]
    await flush_pending(session)
    logged = audit.rows_of(session, entries)
    own = [row for row in logged if "person_ref" in row]
    if len(own) < len(logged):  # one statement per run, in order, as append_many writes them
        own = []
    await insert_all(await session.connection(), [*rows, (AuditEntry.__table__, own)])
    if not own:
        await audit.append_many(session, entries)
    if any(table is Message.__table__ and added for table, added in rows):
        await outbox.wake_workers(session)  # to number them, if subscribers() has not


async def _of_open_releases(
    session: AsyncSession, deadlines: list[dict[str, Any]], new: set[uuid.UUID]
) -> list[dict[str, Any]]:
    """The deadline rows to write: a release a recall closed (app/updates) opens no engagement
    or at_risk deadline again, whatever makes it (an amendment's disclosures, a missed
    appointment): the one place every new deadline passes through."""
    closing = {d["series_id"] for d in deadlines if d["kind"] in RECALL_STOPS} - new
    if not closing:
        return deadlines
    closed = set(
        await session.scalars(
            select(CareUpdate.series_id).where(
                CareUpdate.series_id.in_(closing), CareUpdate.recall_date.is_not(None)
            )
        )
    )
    return [d for d in deadlines if not (d["kind"] in RECALL_STOPS and d["series_id"] in closed)]


async def store(
    session: AsyncSession,
    drafts: Iterable[Draft],
    now: datetime,
    *,
    subscribed: Mapping[uuid.UUID, list[uuid.UUID]] | None = None,
    logged: Iterable[audit.Entry] = (),
) -> list[Message]:
    """Store each drafted message, unnumbered, log it and queue its deliveries, now
    (`to_store`, then `write`); `logged` are the caller's entries, written first (and written
    if there is no draft). `subscribed` is what outbox.subscribers found for the recipients, if
    the caller has read it. On PostgreSQL the workers are told at commit (by that read, or else
    here), and one of them numbers the messages then; their deliveries wait for the numbers.
    The messages returned are not in the session: a query reads them."""
    drafts = list(drafts)
    if not drafts:
        await audit.append_many(session, list(logged))
        return []
    if subscribed is None:
        subscribed = await outbox.subscribers(session, {d.organisation.id for d in drafts})
    planned = to_store(session, drafts, now, subscribed=subscribed, logged=logged)
    await write(session, planned.rows(), planned.entries)
    return planned.messages


def _columns(message: Message) -> dict[str, Any]:
    return {column.key: getattr(message, column.key) for column in Message.__table__.columns}
