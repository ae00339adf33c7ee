"""care updates: what one recipient of a release shares with the other (issue 25)

A `care_update` table (the update's sealed body, its author, its release, a recall's day in
clear), and two links to it: `disclosure.care_update_id` (the decision made for the release's
other recipient; null for a notice's own) and `acknowledgement.care_update_id` (an `attended`
acknowledgement recorded from an update's engagement event). Nothing to fill: no update exists
before this.

Going down drops them, and refuses while any care update is stored: its messages, deliveries and
acknowledgements would outlive it as if they were a notice's.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 21:00:00
"""

import sqlalchemy as sa
from alembic import op

from app.storage.columns import UTCDateTime


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'care_update',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('series_id', sa.Uuid(), nullable=False),
        sa.Column('notice_id', sa.Uuid(), nullable=False),
        sa.Column('person_ref', sa.String(length=64), nullable=False),
        sa.Column('organisation_id', sa.Uuid(), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('author_role', sa.String(length=32), nullable=False),
        sa.Column('about_message_id', sa.Uuid(), nullable=False),
        sa.Column('body_sealed', sa.LargeBinary(), nullable=True),
        sa.Column('body_key_id', sa.String(length=64), nullable=True),
        sa.Column('body_sha256', sa.String(length=64), nullable=False),
        sa.Column('recall_date', sa.Date(), nullable=True),
        sa.Column('recorded_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['notice_id'], ['release_notice.id'], name=op.f('fk_care_update_notice_id_release_notice')),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_care_update_organisation_id_organisation')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_care_update')),
    )
    op.create_index(op.f('ix_care_update_series_id'), 'care_update', ['series_id'])
    op.create_index(op.f('ix_care_update_notice_id'), 'care_update', ['notice_id'])
    op.create_index(op.f('ix_care_update_person_ref'), 'care_update', ['person_ref'])
    with op.batch_alter_table('disclosure') as batch:
        batch.add_column(sa.Column('care_update_id', sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f('fk_disclosure_care_update_id_care_update'), 'care_update', ['care_update_id'], ['id']
        )
        batch.create_index(op.f('ix_disclosure_care_update_id'), ['care_update_id'])
    with op.batch_alter_table('acknowledgement') as batch:
        batch.add_column(sa.Column('care_update_id', sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f('fk_acknowledgement_care_update_id_care_update'), 'care_update', ['care_update_id'], ['id']
        )


def downgrade() -> None:
    if op.get_bind().execute(sa.text('SELECT 1 FROM care_update LIMIT 1')).first():
        raise RuntimeError('care updates are stored: 0015 cannot be downgraded without losing them')
    with op.batch_alter_table('acknowledgement') as batch:
        batch.drop_constraint(op.f('fk_acknowledgement_care_update_id_care_update'), type_='foreignkey')
        batch.drop_column('care_update_id')
    with op.batch_alter_table('disclosure') as batch:
        batch.drop_index(op.f('ix_disclosure_care_update_id'))
        batch.drop_constraint(op.f('fk_disclosure_care_update_id_care_update'), type_='foreignkey')
        batch.drop_column('care_update_id')
    op.drop_index(op.f('ix_care_update_person_ref'), table_name='care_update')
    op.drop_index(op.f('ix_care_update_notice_id'), table_name='care_update')
    op.drop_index(op.f('ix_care_update_series_id'), table_name='care_update')
    op.drop_table('care_update')
