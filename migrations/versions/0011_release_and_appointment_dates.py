"""release and appointment dates: the notice's day of release in clear, an appointment's day

A notice's release date was only in its sealed body. Deadlines and the continuity-of-care report
ask for it across many notices, so intake now also keeps it in clear (a date names nobody), with
an index to find the releases in a range. Notices stored before stay NULL: an acknowledgement
that needs theirs opens the body (app/messages/acknowledgements.py) while it is kept.

An acknowledgement of an appointment (booked, attended, did not attend) now carries the
appointment's day.

Going down drops both; refused while an appointment date is stored, which would be lost (a
release date is a copy of what the sealed body holds).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-14 09:00:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('release_notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('release_date', sa.Date(), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_release_notice_release_date'), ['release_date'], unique=False
        )
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('appointment_date', sa.Date(), nullable=True))


def downgrade() -> None:
    dated = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM acknowledgement WHERE appointment_date IS NOT NULL"
    )).scalar()
    if dated:
        raise RuntimeError("0011 cannot be undone with appointment dates stored: they would be lost")
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.drop_column('appointment_date')
    with op.batch_alter_table('release_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_notice_release_date'))
        batch_op.drop_column('release_date')
