"""consent carriers: every notice that carries a consent record, not only the first

A consent decision carried by several notices used to be one record under the first notice
alone, so cancelling that notice as entered in error voided the record for the others too. Each
notice version that carries a record now names it (consent_carrier), and a record made from
notices is voided only when none that carries it is in force (app/consent/records.py).

The carriers so far: the notice each record was made from, and every notice whose stored body
carries the same decision as a record not voided (read with the data keys, as 0004 did, a
batch at a time). A notice already purged cannot be read: only the record it was made from is
known to be its; so too for a body that cannot be opened (an unknown data key, altered), which
is counted in a warning rather than stop the upgrade. Records voided before this migration stay
voided.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

log = logging.getLogger("exchange.migrate")
T = sa.DateTime(timezone=True)
consent = sa.table(
    "consent",
    *(sa.column(name, sa.Uuid()) for name in ("id", "notice_id")),
    *(sa.column(name) for name in ("person_ref", "scope", "decision", "recorded_by")),
    *(sa.column(name, T) for name in ("recorded_at", "created_at", "voided_at")),
)
notice = sa.table(
    "release_notice",
    sa.column("id", sa.Uuid()),
    sa.column("person_ref", sa.String()),
    sa.column("body_sealed", sa.LargeBinary()),
    sa.column("body_key_id", sa.String()),
    sa.column("received_at", T),
)
carrier = sa.table(
    "consent_carrier",
    sa.column("consent_id", sa.Uuid()),
    sa.column("notice_id", sa.Uuid()),
    sa.column("created_at", T),
)


def upgrade() -> None:
    op.create_table('consent_carrier',
    sa.Column('consent_id', sa.Uuid(), nullable=False),
    sa.Column('notice_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], name=op.f('fk_consent_carrier_consent_id_consent')),
    sa.ForeignKeyConstraint(['notice_id'], ['release_notice.id'], name=op.f('fk_consent_carrier_notice_id_release_notice')),
    sa.PrimaryKeyConstraint('consent_id', 'notice_id', name=op.f('pk_consent_carrier'))
    )
    op.create_index(op.f('ix_consent_carrier_notice_id'), 'consent_carrier', ['notice_id'], unique=False)
    _carriers()


def _decision(person_ref: str, scope: str, decision: str, at: datetime, by: str) -> tuple:
    """What makes two records one decision (app/consent/records.py), the instant in UTC."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return (person_ref, scope, decision, at, by)


BATCH = 500  # notices read, and their carriers written, at a time


def _carriers() -> None:
    # Each record made from a notice was carried by it.
    op.execute(
        "INSERT INTO consent_carrier (consent_id, notice_id, created_at)"
        " SELECT id, notice_id, created_at FROM consent WHERE notice_id IS NOT NULL"
    )
    # A later notice carrying the same decision as a record not voided was made no record: read
    # what each such notice carries, a batch at a time (only people with such a record).
    bind = op.get_bind()
    people = sa.select(consent.c.person_ref).where(consent.c.voided_at.is_(None))
    stored = (
        sa.select(notice)
        .where(notice.c.body_sealed.is_not(None), notice.c.person_ref.in_(people))
        .order_by(notice.c.id)
        .limit(BATCH)
    )
    keys, unreadable, after = None, 0, None
    while True:
        rows = bind.execute(stored if after is None else stored.where(notice.c.id > after)).all()
        if not rows:
            break
        after = rows[-1].id
        if keys is None:
            keys = _data_keys()
        standing = _standing(bind, {row.person_ref for row in rows})
        found = []
        for row in rows:
            body = _opened(keys, row)
            if body is None:  # as if purged: only the record it was made from is known
                unreadable += 1
                continue
            carried = set()
            for item in body.get("consent", []):
                at = datetime.fromisoformat(item["recorded_at"])
                scope, decision, by = item["scope"], item["decision"], item["recorded_by"]
                key = _decision(row.person_ref, scope, decision, at, by)
                for consent_id, made_from in standing.get(key, []):
                    if made_from != row.id and consent_id not in carried:
                        carried.add(consent_id)
                        found.append(
                            {
                                "consent_id": consent_id,
                                "notice_id": row.id,
                                "created_at": row.received_at,
                            }
                        )
        if found:
            bind.execute(carrier.insert(), found)
    if unreadable:
        log.warning(
            "0009: %d stored notice bodies could not be opened (unknown data key or altered) and "
            "were taken as purged: each carries only the consent records made from it",
            unreadable,
        )


def _standing(bind: Any, people: set[str]) -> dict[tuple, list[tuple[Any, Any]]]:
    """The records not voided of these people, by decision: (id, notice made from)."""
    records = bind.execute(
        sa.select(consent).where(
            consent.c.voided_at.is_(None), consent.c.person_ref.in_(sorted(people))
        )
    )
    standing: dict[tuple, list[tuple[Any, Any]]] = {}
    for r in records:
        key = _decision(r.person_ref, r.scope, r.decision, r.recorded_at, r.recorded_by)
        standing.setdefault(key, []).append((r.id, r.notice_id))
    return standing


def _data_keys() -> Any:
    from app.keys.sealing import load_data_keys
    from app.settings import Settings

    keys_dir = context.config.attributes.get("data_keys_dir") or Settings().sealing_keys_dir
    return load_data_keys(keys_dir, create=False)  # new keys could not open what is stored


def _opened(keys: Any, row: Any) -> dict[str, Any] | None:
    """The notice's body, or None if it cannot be opened (an unknown data key, altered)."""
    from app.keys.sealing import Sealed, SealError, place

    try:
        sealed = Sealed(row.body_key_id, row.body_sealed)
        body = keys.open(sealed, place("release_notice", "body_sealed", row.id))
    except SealError:
        return None
    return json.loads(body)


def downgrade() -> None:
    op.drop_index(op.f('ix_consent_carrier_notice_id'), table_name='consent_carrier')
    op.drop_table('consent_carrier')
