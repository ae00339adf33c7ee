"""deadlines: what a recipient owes about a disclosure, and by when; late acknowledgements

Each disclosure message stored from now on has its deadlines (app/deadlines): its receipt and,
for a substance misuse service, engagement within the window after release; a missed
appointment raises an at_risk. The partial index holds the deadlines the overdue scan has still
to look at, by when they pass. Messages stored before have none: their time has mostly passed,
and alerting on them all at the upgrade would tell nobody anything new.

An acknowledgement recorded after a deadline it met had passed is marked late.

Going down drops both (the deadlines are a diary of what the messages and acknowledgements
hold; lateness can be worked out again from them).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-21 09:00:00
"""

import sqlalchemy as sa
from alembic import op

from app.storage.columns import UTCDateTime


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

OPEN = "met_at IS NULL AND stopped_at IS NULL AND alerted_at IS NULL"


def upgrade() -> None:
    op.create_table(
        'deadline',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('message_id', sa.Uuid(), nullable=False),
        sa.Column('notice_id', sa.Uuid(), nullable=False),
        sa.Column('series_id', sa.Uuid(), nullable=False),
        sa.Column('organisation_id', sa.Uuid(), nullable=False),
        sa.Column('acknowledgement_id', sa.Uuid(), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('due_at', UTCDateTime(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('met_at', UTCDateTime(), nullable=True),
        sa.Column('stopped_at', UTCDateTime(), nullable=True),
        sa.Column('stopped_reason', sa.String(length=32), nullable=True),
        sa.Column('alerted_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_deadline_message_id_message')),
        sa.ForeignKeyConstraint(['notice_id'], ['release_notice.id'], name=op.f('fk_deadline_notice_id_release_notice')),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_deadline_organisation_id_organisation')),
        sa.ForeignKeyConstraint(['acknowledgement_id'], ['acknowledgement.id'], name=op.f('fk_deadline_acknowledgement_id_acknowledgement')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deadline')),
    )
    op.create_index(op.f('ix_deadline_message_id'), 'deadline', ['message_id'], unique=False)
    op.create_index('ix_deadline_series_owner', 'deadline', ['series_id', 'organisation_id'], unique=False)
    op.create_index(
        'ix_deadline_open', 'deadline', ['due_at'], unique=False,
        sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
    )
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('late', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.drop_column('late')
    op.drop_index('ix_deadline_open', table_name='deadline')
    op.drop_index('ix_deadline_series_owner', table_name='deadline')
    op.drop_index(op.f('ix_deadline_message_id'), table_name='deadline')
    op.drop_table('deadline')
