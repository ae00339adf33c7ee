"""messages: an index on the message each one supersedes

Whether a newer message replaced a disclosure is asked of each of a person's disclosures whenever
a consent of theirs stops standing: a withdrawal, or a notice that brings a new refusal (a person
released again). Without this index each asking read the whole message table: 250 ms a disclosure
at two million messages, where the index answers in well under a millisecond.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 14:45:00
"""

from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_message_supersedes_id', 'message', ['supersedes_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_message_supersedes_id', table_name='message')
