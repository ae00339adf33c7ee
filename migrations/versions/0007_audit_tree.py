"""the exchange log as a Merkle tree: person refs on entries, leaves, full-subtree nodes and
signed checkpoints, all append-only

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 12:30:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

TABLES = ("audit_leaf", "audit_node", "audit_checkpoint")
MESSAGE = "the exchange log is append-only"
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy): a copy would drop audit_entry's triggers on SQLite.
    op.add_column('audit_entry', sa.Column('person_ref', sa.String(length=64), nullable=True))
    op.create_index('ix_audit_entry_person_ref', 'audit_entry', ['person_ref'], unique=False)
    # Entries about a notice concern its person: fill person_ref in those written so far. They
    # are in no leaf yet (the tree starts here), so 0006's triggers are lifted just for this.
    postgres = op.get_bind().dialect.name == "postgresql"
    backfill = (
        "UPDATE audit_entry SET person_ref = (SELECT n.person_ref FROM release_notice n"
        " WHERE n.id = audit_entry.notice_id) WHERE notice_id IS NOT NULL AND person_ref IS NULL"
    )
    if postgres:
        op.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
        op.execute(backfill)
        op.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
    else:
        op.execute("DROP TRIGGER audit_entry_no_update")
        op.execute(backfill)
        op.execute(
            "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry"
            f" BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )

    op.create_table('audit_leaf',
    sa.Column('leaf_index', BIG, autoincrement=False, nullable=False),
    sa.Column('entry_id', BIG, nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(), nullable=False),
    sa.Column('sequenced_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['audit_entry.id'], name=op.f('fk_audit_leaf_entry_id_audit_entry')),
    sa.PrimaryKeyConstraint('leaf_index', name=op.f('pk_audit_leaf')),
    sa.UniqueConstraint('entry_id', name=op.f('uq_audit_leaf_entry_id'))
    )
    op.create_table('audit_node',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('position', BIG, autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('level', 'position', name=op.f('pk_audit_node'))
    )
    op.create_table('audit_checkpoint',
    sa.Column('tree_size', BIG, autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_audit_checkpoint'))
    )
    for table in TABLES:
        if postgres:  # the function is 0006's
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()"
            )
            continue
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM audit_leaf")).scalar():
        raise RuntimeError("0007 cannot be undone once the log has leaves: they would be lost")
    for table in reversed(TABLES):
        op.drop_table(table)  # its triggers go with it
    op.drop_index('ix_audit_entry_person_ref', table_name='audit_entry')
    if bind.dialect.name == "postgresql":
        op.drop_column('audit_entry', 'person_ref')
        return
    # SQLite: a column drop copies the table, which loses its triggers: put them back after.
    for event in ("update", "delete"):
        op.execute(f"DROP TRIGGER audit_entry_no_{event}")
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_column('person_ref')
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_entry_no_{event.lower()} BEFORE {event} ON audit_entry"
            f" BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
