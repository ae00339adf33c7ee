"""console session ended: the console's sessions signed out before their cookie expires

A console session is a signed cookie holding a session ID; signing out records the ID's hash
here, and a cookie whose session has ended is refused from then on (app/console/web.py). A row
is kept until the cookie would have expired anyway.

Going down drops it: every cookie not yet expired is then accepted again until it expires.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 22:00:00
"""

import sqlalchemy as sa
from alembic import op

from app.storage.columns import UTCDateTime


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'console_session_ended',
        sa.Column('session_sha256', sa.String(length=64), nullable=False),
        sa.Column('ended_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('session_sha256', name=op.f('pk_console_session_ended')),
    )
    op.create_index(
        op.f('ix_console_session_ended_expires_at'), 'console_session_ended', ['expires_at'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_console_session_ended_expires_at'), table_name='console_session_ended')
    op.drop_table('console_session_ended')
