"""clients: key-based authentication, secret rotation, used assertion ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:54:55.600022
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('client_assertion',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('jti', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'jti', name=op.f('pk_client_assertion'))
    )
    with op.batch_alter_table('client_assertion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_client_assertion_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('api_client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('public_jwk', sa.JSON(), nullable=True))
        batch_op.alter_column('secret_sha256',
               existing_type=sa.VARCHAR(length=64),
               nullable=True)



def downgrade() -> None:
    # Key-only clients get a hash no secret has: they can no longer authenticate, and nothing
    # else can authenticate as them.
    op.execute("UPDATE api_client SET secret_sha256 = '' WHERE secret_sha256 IS NULL")
    with op.batch_alter_table('api_client', schema=None) as batch_op:
        batch_op.alter_column('secret_sha256',
               existing_type=sa.VARCHAR(length=64),
               nullable=False)
        batch_op.drop_column('public_jwk')
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret_sha256')

    with op.batch_alter_table('client_assertion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_client_assertion_expires_at'))

    op.drop_table('client_assertion')
