"""ORM tables. Typed columns, no behaviour.

The few relationships are there for the unit of work's sake only: each tells a flush to insert
the row a foreign key points at before the row that points at it, so that one flush can write a
notice and everything it causes, each table in one statement. They are never set or loaded
(lazy="raise"); the foreign-key columns are what the code reads and writes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.storage.columns import Base, BigId, UTCDateTime


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # The last inbox sequence number the sequencer gave this organisation's messages.
    message_sequence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # A recipient's RSA public key (a JWK with its kid): its messages are then signed and then
    # encrypted to it (RSA-OAEP-256, A256GCM, cty JWT). None: signed only.
    encryption_jwk: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiClient(Base):
    """A system acting for one organisation: it proves itself with a secret or with its key."""

    __tablename__ = "api_client"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"), index=True)
    # client_secret_basic: the secret's hash, and during a rotation the previous one until then.
    secret_sha256: Mapped[str | None] = mapped_column(String(64))
    previous_secret_sha256: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # private_key_jwt (RFC 7523): the client's public key, as a JWK with its one algorithm.
    public_jwk: Mapped[dict[str, str] | None] = mapped_column(JSON)
    scopes: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ClientAssertion(Base):
    """A private_key_jwt assertion's jti, kept until it expires so it is never accepted twice."""

    __tablename__ = "client_assertion"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class StoredNotice(Base):
    """One version of a release notice. An amendment is a new row in the same series that
    supersedes the one before; the body is sealed (app/keys/sealing.py) and purged after retention.
    """

    __tablename__ = "release_notice"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"), index=True)
    # Whom it is about, as a keyed hash of the NOMS number (app/keys/sealing.py): names nobody.
    person_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    # The first version's id: every version of one notice shares it.
    series_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    version: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("release_notice.id"))
    body_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_key_id: Mapped[str | None] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(64))
    # The day of release, in clear (a date names nobody): deadlines and reports ask for it. Null
    # only for a notice stored before it was kept (0011) whose body was purged, or could not be
    # opened, before migration 0013 copied the date from it: then it is not known.
    release_date: Mapped[date | None] = mapped_column(Date, index=True)
    # accepted, not_routed, superseded or cancelled; the reason is a code (e.g. the release reason)
    status: Mapped[str] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """A POST made with an Idempotency-Key: what it asked (hashed) and what it was answered.

    The key itself is stored only as a hash: a client may build its keys from personal data.
    """

    __tablename__ = "idempotency_key"

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id"), primary_key=True
    )
    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(200))
    notice_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Disclosure(Base):
    """What one recipient was sent from one notice, and what was withheld and why (no values)."""

    __tablename__ = "disclosure"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    notice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("release_notice.id"), index=True)
    recipient_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    _notice: Mapped[StoredNotice] = relationship(lazy="raise")  # flush order only
    recipient_role: Mapped[str] = mapped_column(String(32))
    fields_sent: Mapped[list[str]] = mapped_column(JSON)
    manifest: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    # Each field sent with the rule that allowed it (and its transform); each rule used, with
    # what it required and its lawful basis; the consent scopes the disclosure relied on.
    allowed: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    bases: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    consents_relied: Mapped[list[str] | None] = mapped_column(JSON)
    policy_version: Mapped[str] = mapped_column(String(32))
    policy_hash: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A care update's decision for the release's other recipient (null: the notice's own).
    care_update_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("care_update.id"), index=True
    )
    _care_update: Mapped[CareUpdate | None] = relationship(lazy="raise")  # flush order only


class Message(Base):
    """One signed message for one recipient: the unit of the inbox and of delivery.

    A disclosure, or a cancellation of an earlier message. `supersedes_id` names the message to
    the same recipient that this one replaces (an amendment's disclosure, or a cancellation).
    `sequence` is its number in the recipient's inbox: NULL when stored, given once, after
    commit, by the sequencer (app/messages/sequencer.py), and never changed.
    """

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("recipient_organisation_id", "sequence"),
        Index("ix_message_recipient_created", "recipient_organisation_id", "created_at"),
        # The messages the sequencer has still to number: a few rows, whatever the table's size.
        Index(
            "ix_message_unnumbered",
            "created_at",
            "stored_order",
            "id",
            sqlite_where=text("sequence IS NULL"),
            postgresql_where=text("sequence IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), server_default="disclosure")
    notice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("release_notice.id"), index=True)
    disclosure_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("disclosure.id"))
    # Indexed: whether a newer message replaced one is asked whenever a consent stops standing.
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("message.id"), index=True)
    recipient_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    _notice: Mapped[StoredNotice] = relationship(lazy="raise")  # flush order only
    _disclosure: Mapped[Disclosure | None] = relationship(lazy="raise")  # flush order only
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    # Its place among the messages its session stored (0, 1, ...): one transaction's messages
    # share created_at, and the sequencer numbers them in the order they were stored.
    stored_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    jws_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    jws_key_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Stopped before it was delivered anywhere: never sent, and the inbox withholds its payload.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Held by its recipient, but its consent was withdrawn: the inbox withholds its payload.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(Base):
    """A person's consent decision of one scope: never updated but to be withdrawn or voided.
    The person is a keyed hash of the NOMS number; `notice_id` is the notice it was made from."""

    __tablename__ = "consent"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    person_ref: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))  # a role, e.g. "Healthcare, HMP X"
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    notice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("release_notice.id"))
    _notice: Mapped[StoredNotice | None] = relationship(lazy="raise")  # flush order only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Made from notices, none of which carries it any more: as if never made
    # (app/consent/records.py).
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who withdrew or voided it.
    withdrawn_by_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisation.id")
    )


class ConsentCarrier(Base):
    """A notice version that carried a consent record: evidence of it, never changed."""

    __tablename__ = "consent_carrier"

    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("consent.id"), primary_key=True)
    notice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("release_notice.id"), primary_key=True, index=True
    )
    _consent: Mapped[Consent] = relationship(lazy="raise")  # flush order only
    _notice: Mapped[StoredNotice] = relationship(lazy="raise")  # flush order only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Subscription(Base):
    __tablename__ = "subscription"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # The Standard Webhooks signing secret must be usable to sign, so it cannot be a hash.
    secret: Mapped[str] = mapped_column(String(100))
    # After a secret rotation the previous secret still signs, beside the new one, until then.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))  # active | disabled | deleted
    # why it is disabled: "recipient" (asked to), "gone" (the endpoint answered 410)
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One message to one subscription: pending until delivered, or dead when retries are spent."""

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_due", "state", "next_attempt_at"),
        Index("ix_delivery_subscription_created", "subscription_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message.id"), index=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscription.id"), index=True)
    _message: Mapped[Message] = relationship(lazy="raise")  # flush order only
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which claim holds the lease: only that claim may record the attempt's outcome.
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("delivery.id"), index=True)
    _delivery: Mapped[Delivery] = relationship(lazy="raise")  # flush order only
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))


class Acknowledgement(Base):
    """What a recipient says became of a message: received, accepted, appointment booked, ..."""

    __tablename__ = "acknowledgement"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    _message: Mapped[Message] = relationship(lazy="raise")  # flush order only
    client_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    # The appointment's day: given with appointment_booked, attended and did_not_attend only.
    appointment_date: Mapped[date | None] = mapped_column(Date)
    # The free-text note may name the person: sealed like a notice body, purged with it.
    note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    note_key_id: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Recorded after a deadline it met had passed (app/deadlines).
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Recorded from a care update's `attended` event (app/updates), not posted as itself.
    care_update_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("care_update.id"))


class EngagementOutcome(Base):
    """What a recipient has said of a release (a notice series) so far, over every version's
    disclosure message to it, kept as each acknowledgement arrives (app/messages/
    acknowledgements.py) so that the continuity report never reduces acknowledgements: the
    latest (by recorded_at, then id) and the days of every `attended`."""

    __tablename__ = "engagement_outcome"

    series_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisation.id"), primary_key=True
    )
    latest_status: Mapped[str] = mapped_column(String(32))
    latest_appointment_date: Mapped[date | None] = mapped_column(Date)
    latest_recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latest_acknowledgement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("acknowledgement.id"))
    # The attended appointments' days, ISO and comma-separated, each once: an amendment can
    # move the release date, so which of them fall in the window is decided when read.
    attended_days: Mapped[str | None] = mapped_column(Text)


# A deadline the overdue scan has still to look at: neither met, stopped nor alerted.
OPEN_DEADLINE = "met_at IS NULL AND stopped_at IS NULL AND alerted_at IS NULL"


class Deadline(Base):
    """What a recipient owes about a disclosure message, and by when (app/deadlines/rules.py):
    its receipt, or (of a substance misuse service) an attended appointment within the window;
    or, raised by a missed appointment, the probation provider to be told it is at risk.

    The exchange's diary: when to look. Whether it was met, or still stands, is what the
    messages and acknowledgements say; the overdue scan reads them again before it alerts.
    """

    __tablename__ = "deadline"
    __table_args__ = (
        # The deadlines still to look at, by when they pass: the scan reads a few rows of it,
        # however many messages are stored.
        Index(
            "ix_deadline_open",
            "due_at",
            sqlite_where=text(OPEN_DEADLINE),
            postgresql_where=text(OPEN_DEADLINE),
        ),
        Index("ix_deadline_series_owner", "series_id", "organisation_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # receipt, engagement or at_risk
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("message.id"), index=True)
    _message: Mapped[Message] = relationship(lazy="raise")  # flush order only
    notice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("release_notice.id"))
    series_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    # Who owes it: the message's recipient.
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    # The missed appointment's acknowledgement that raised an at_risk.
    acknowledgement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("acknowledgement.id"))
    due_on: Mapped[date] = mapped_column(Date)  # by the end of this day in England and Wales
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # that end, as an instant
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_reason: Mapped[str | None] = mapped_column(String(32))
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The log's and the console's tables live beside these; importing them registers them with
# Base.metadata.
from app.storage import console_tables, log_tables  # noqa: E402, F401
from app.storage.update_tables import CareUpdate  # noqa: E402
