"""recipient encryption keys, subscription secret rotation and disabling, acknowledgements

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 11:00:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encryption_jwk', sa.JSON(), nullable=True))

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret', sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column('previous_secret_expires_at', sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('disabled_reason', sa.String(length=32), nullable=True))
    # Until now DELETE set "disabled": every such row was deleted by its owner, for good.
    op.execute("UPDATE subscription SET status = 'deleted' WHERE status = 'disabled'")
    # ... and a deleted subscription's pending deliveries are dead, as DELETE now makes them.
    op.execute(
        "UPDATE delivery SET state = 'dead', last_error = 'subscription deleted',"
        " leased_until = NULL, lease_token = NULL WHERE state = 'pending' AND subscription_id IN"
        " (SELECT id FROM subscription WHERE status = 'deleted')"
    )

    # Recovery reads a recipient's messages by time, and a subscription's deliveries newest first.
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index(
            'ix_message_recipient_created', ['recipient_organisation_id', 'created_at'],
            unique=False,
        )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index(
            'ix_delivery_subscription_created', ['subscription_id', 'created_at', 'id'],
            unique=False,
        )

    op.create_table('acknowledgement',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('message_id', sa.Uuid(), nullable=False),
    sa.Column('organisation_id', sa.Uuid(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('note_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('note_key_id', sa.String(length=64), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_acknowledgement_message_id_message')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_acknowledgement_organisation_id_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_acknowledgement'))
    )
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_acknowledgement_message_id'), ['message_id'], unique=False)


def downgrade() -> None:
    # Encrypted messages, a rotation's overlap and acknowledgements have nowhere to go: refuse
    # rather than lose them silently.
    bind = op.get_bind()
    lost = bind.execute(sa.text(
        "SELECT (SELECT count(*) FROM acknowledgement)"
        " + (SELECT count(*) FROM organisation WHERE encryption_jwk IS NOT NULL)"
        " + (SELECT count(*) FROM subscription WHERE previous_secret IS NOT NULL"
        " OR disabled_reason IS NOT NULL)"
    )).scalar()
    if lost:
        raise RuntimeError(
            "0005 cannot be undone with acknowledgements, encryption keys, subscriptions disabled"
            " (not deleted) or a secret rotation stored"
        )
    op.execute("UPDATE subscription SET status = 'disabled' WHERE status = 'deleted'")
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_subscription_created')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_recipient_created')
    with op.batch_alter_table('acknowledgement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_acknowledgement_message_id'))
    op.drop_table('acknowledgement')

    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_column('disabled_reason')
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret')

    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_column('encryption_jwk')
