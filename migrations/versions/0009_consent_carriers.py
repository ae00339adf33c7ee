"""consent carriers: every notice that carries a consent record, not only the first

A consent decision carried by several notices used to be one record under the first notice
alone, so cancelling that notice as entered in error voided the record for the others too. Each
notice version that carries a record now names it (consent_carrier), and a record made from
notices is voided only when none that carries it is in force (app/consents.py).

The carriers so far: the notice each record was made from, and every notice whose stored body
carries the same decision as a record not voided (read with the data keys, as 0004 did). A
notice already purged cannot be read: only the record it was made from is known to be its.
Records voided before this migration stay voided.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00
"""

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import context, op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

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
    """What makes two records one decision (app/consents.py), the instant in UTC."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return (person_ref, scope, decision, at, by)


def _carriers() -> None:
    # Each record made from a notice was carried by it.
    op.execute(
        "INSERT INTO consent_carrier (consent_id, notice_id, created_at)"
        " SELECT id, notice_id, created_at FROM consent WHERE notice_id IS NOT NULL"
    )
    # A later notice carrying the same decision was made no record: read what each carries.
    bind = op.get_bind()
    records = bind.execute(sa.select(consent)).all()
    linked = {(r.id, r.notice_id) for r in records if r.notice_id is not None}
    standing: dict[tuple, list[Any]] = {}
    for r in records:
        if r.voided_at is None:
            key = _decision(r.person_ref, r.scope, r.decision, r.recorded_at, r.recorded_by)
            standing.setdefault(key, []).append(r.id)
    stored = bind.execute(
        sa.select(notice)
        .where(notice.c.body_sealed.is_not(None), notice.c.person_ref.is_not(None))
        .order_by(notice.c.received_at)
    ).all()
    if not standing or not stored:
        return
    from app.sealing import Sealed, load_data_keys, place
    from app.settings import Settings

    keys_dir = context.config.attributes.get("data_keys_dir") or Settings().sealing_keys_dir
    keys = load_data_keys(keys_dir, create=False)  # new keys could not open what is stored
    for row in stored:
        sealed = Sealed(row.body_key_id, row.body_sealed)
        body = json.loads(keys.open(sealed, place("release_notice", "body_sealed", row.id)))
        for item in body.get("consent", []):
            at = datetime.fromisoformat(item["recorded_at"])
            scope, decision, by = item["scope"], item["decision"], item["recorded_by"]
            key = _decision(row.person_ref, scope, decision, at, by)
            for consent_id in standing.get(key, []):
                if (consent_id, row.id) not in linked:
                    linked.add((consent_id, row.id))
                    bind.execute(
                        carrier.insert().values(
                            consent_id=consent_id, notice_id=row.id, created_at=row.received_at
                        )
                    )


def downgrade() -> None:
    op.drop_index(op.f('ix_consent_carrier_notice_id'), table_name='consent_carrier')
    op.drop_table('consent_carrier')
