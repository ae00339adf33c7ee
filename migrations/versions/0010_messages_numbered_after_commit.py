"""messages: numbered after commit, by the sequencer, not at intake

A message is stored unnumbered (sequence NULL) and the sequencer (app/messages/sequencer.py)
gives it the next number in its recipient's inbox once its transaction has committed, so intake
no longer locks the recipient's counter until commit. The partial index lists the messages
still to be numbered; (recipient_organisation_id, sequence) stays unique. One transaction's
messages share created_at: stored_order keeps the order they were stored in, which the
sequencer numbers them in (as it did when numbers were given at intake).

Going down numbers whatever is still unnumbered, each recipient's in the sequencer's order
after its last number, as the sequencer would, so the column can be NOT NULL again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00
"""

import uuid
from collections import defaultdict

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

UNNUMBERED = sa.text("sequence IS NULL")
message = sa.table(
    "message",
    sa.column("id", sa.Uuid()),
    sa.column("recipient_organisation_id", sa.Uuid()),
    sa.column("sequence", sa.BigInteger()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
organisation = sa.table(
    "organisation", sa.column("id", sa.Uuid()), sa.column("message_sequence", sa.BigInteger())
)


def upgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.alter_column('sequence', existing_type=sa.BigInteger(), nullable=True)
        batch_op.add_column(
            sa.Column('stored_order', sa.Integer(), server_default='0', nullable=False)
        )
    op.create_index(
        'ix_message_unnumbered',
        'message',
        ['created_at', 'stored_order', 'id'],
        unique=False,
        sqlite_where=UNNUMBERED,
        postgresql_where=UNNUMBERED,
    )


def _number_the_rest() -> None:
    bind = op.get_bind()
    waiting = bind.execute(
        sa.select(message.c.id, message.c.recipient_organisation_id)
        .where(message.c.sequence.is_(None))
        .order_by(message.c.created_at, sa.column("stored_order"), message.c.id)
    ).all()
    if not waiting:
        return
    last = dict(bind.execute(sa.select(organisation.c.id, organisation.c.message_sequence)).all())
    given: dict[uuid.UUID, int] = defaultdict(int)
    for message_id, recipient in waiting:
        given[recipient] += 1
        bind.execute(
            message.update()
            .where(message.c.id == message_id)
            .values(sequence=(last[recipient] or 0) + given[recipient])
        )
    for recipient, count in given.items():
        bind.execute(
            organisation.update()
            .where(organisation.c.id == recipient)
            .values(message_sequence=(last[recipient] or 0) + count)
        )


def downgrade() -> None:
    _number_the_rest()
    op.drop_index('ix_message_unnumbered', table_name='message')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('stored_order')
        batch_op.alter_column('sequence', existing_type=sa.BigInteger(), nullable=False)
