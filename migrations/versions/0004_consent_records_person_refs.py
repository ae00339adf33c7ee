"""consent records, person refs, disclosure bases, revoked messages

Each stored notice gets its person_ref (a keyed hash of its NOMS number) and its consent
entries become consent records, read from the sealed bodies with the data keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 08:15:13.718440
"""

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_ref', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('notice_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_by_organisation_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['notice_id'], ['release_notice.id'], name=op.f('fk_consent_notice_id_release_notice')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_consent_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['withdrawn_by_organisation_id'], ['organisation.id'], name=op.f('fk_consent_withdrawn_by_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent'))
    )
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_person_ref'), ['person_ref'], unique=False)

    with op.batch_alter_table('disclosure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allowed', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('bases', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('consents_relied', sa.JSON(), nullable=True))

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column(
            'kind', existing_type=sa.String(length=16), type_=sa.String(length=32),
            existing_nullable=False, existing_server_default='disclosure',
        )

    with op.batch_alter_table('release_notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_ref', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_release_notice_person_ref'), ['person_ref'], unique=False)

    _refs_and_consents()
    _consents_relied()


notice = sa.table(
    "release_notice",
    sa.column("id", sa.Uuid()),
    sa.column("organisation_id", sa.Uuid()),
    sa.column("body_sealed", sa.LargeBinary()),
    sa.column("body_key_id", sa.String()),
    sa.column("person_ref", sa.String()),
    sa.column("received_at", sa.DateTime(timezone=True)),
)
consent = sa.table(
    "consent",
    *(sa.column(name, sa.Uuid()) for name in ("id", "organisation_id", "notice_id")),
    *(sa.column(name) for name in ("person_ref", "scope", "decision", "recorded_by")),
    *(sa.column(name, sa.DateTime(timezone=True)) for name in ("recorded_at", "created_at")),
)


disclosure = sa.table(
    "disclosure",
    sa.column("id", sa.Uuid()),
    sa.column("recipient_role", sa.String()),
    sa.column("fields_sent", sa.JSON()),
    sa.column("consents_relied", sa.JSON()),
)
NOTES = "/nps_use/treatment_in_custody/clinical_notes"


def _consents_relied() -> None:
    """What earlier decisions relied on, under the policy of their time: the treatment service
    got anything only with its consent; probation got clinical notes only with its."""
    bind = op.get_bind()
    for row in bind.execute(sa.select(disclosure)).all():
        sent = row.fields_sent or []
        if row.recipient_role == "substance_misuse_service":
            relied = ["substance_misuse_service"] if sent else []
        else:
            covers = any(NOTES == p or NOTES.startswith(p + "/") for p in sent)
            relied = ["probation_clinical_details"] if covers else []
        bind.execute(
            disclosure.update().where(disclosure.c.id == row.id).values(consents_relied=relied)
        )


def _refs_and_consents() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(notice).where(notice.c.body_sealed.is_not(None)).order_by(notice.c.received_at)
    ).all()
    if not rows:
        return
    from app.keys.sealing import Sealed, load_data_keys, place
    from app.settings import Settings

    keys_dir = context.config.attributes.get("data_keys_dir") or Settings().sealing_keys_dir
    keys = load_data_keys(keys_dir, create=False)  # new keys could not open what is stored
    recorded: set[tuple[str, ...]] = set()
    for row in rows:
        sealed = Sealed(row.body_key_id, row.body_sealed)
        body = json.loads(keys.open(sealed, place("release_notice", "body_sealed", row.id)))
        noms_number = (body.get("person") or {}).get("noms_number")
        if not noms_number:
            continue
        ref = keys.person_ref(noms_number)
        bind.execute(notice.update().where(notice.c.id == row.id).values(person_ref=ref))
        for item in body.get("consent", []):
            seen = (ref, item["scope"], item["decision"], item["recorded_at"], item["recorded_by"])
            if seen in recorded:  # the same record, carried again by a later version
                continue
            recorded.add(seen)
            bind.execute(
                consent.insert().values(
                    id=uuid.uuid4(),
                    person_ref=ref,
                    scope=item["scope"],
                    decision=item["decision"],
                    recorded_at=datetime.fromisoformat(item["recorded_at"]),
                    recorded_by=item["recorded_by"],
                    organisation_id=row.organisation_id,
                    notice_id=row.id,
                    created_at=datetime.now(UTC),
                )
            )


def downgrade() -> None:
    # Consent withdrawals do not fit the old kind column, and revocations and consent records
    # made or withdrawn since have nowhere to go: refuse rather than send again what was revoked.
    # Records copied from notices come back from the notices.
    bind = op.get_bind()
    lost = bind.execute(sa.text(
        "SELECT (SELECT count(*) FROM consent WHERE notice_id IS NULL"
        " OR withdrawn_at IS NOT NULL OR voided_at IS NOT NULL)"
        " + (SELECT count(*) FROM message WHERE revoked_at IS NOT NULL OR withdrawn_at IS NOT NULL"
        " OR kind = 'consent_withdrawn')"
    )).scalar()
    if lost:
        raise RuntimeError(
            "0004 cannot be undone with consent records, revoked or withdrawn messages stored"
        )
    with op.batch_alter_table('release_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_notice_person_ref'))
        batch_op.drop_column('person_ref')

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
        batch_op.drop_column('revoked_at')
        batch_op.alter_column(
            'kind', existing_type=sa.String(length=32), type_=sa.String(length=16),
            existing_nullable=False, existing_server_default='disclosure',
        )

    with op.batch_alter_table('disclosure', schema=None) as batch_op:
        batch_op.drop_column('consents_relied')
        batch_op.drop_column('bases')
        batch_op.drop_column('allowed')

    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_person_ref'))

    op.drop_table('consent')
