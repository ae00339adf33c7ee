"""notices: versions, sealed bodies and payloads, idempotency keys, retention

Existing notice bodies and message payloads are sealed with the data keys (AES-256-GCM), read
from the directory the caller names (app/storage/migrate.py) or the settings' default.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 07:52:59.073128
"""

import json

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

notice = sa.table(
    "release_notice",
    sa.column("id", sa.Uuid()),
    sa.column("body", sa.JSON()),
    sa.column("body_sealed", sa.LargeBinary()),
    sa.column("body_key_id", sa.String()),
    sa.column("series_id", sa.Uuid()),
    sa.column("version", sa.Integer()),
)
message = sa.table(
    "message",
    sa.column("id", sa.Uuid()),
    sa.column("jws", sa.Text()),
    sa.column("jws_sealed", sa.LargeBinary()),
    sa.column("jws_key_id", sa.String()),
)


def _data_keys(*, create: bool):
    from app.keys.sealing import load_data_keys
    from app.settings import Settings

    keys_dir = context.config.attributes.get("data_keys_dir") or Settings().sealing_keys_dir
    # Sealing what is stored may make the first key; opening it again must find that key.
    return load_data_keys(keys_dir, create=create)


def _reseal(table, plain: str, sealed: str, key_id: str, encode, decode, *, to_sealed: bool):
    """Move every row's value between the plain and the sealed column, one row at a time."""
    from app.keys.sealing import Sealed, place

    bind = op.get_bind()
    source = table.c[plain] if to_sealed else table.c[sealed]
    rows = bind.execute(
        sa.select(table.c.id, source, table.c[key_id]).where(source.is_not(None))
    ).all()
    if not rows:
        return
    keys = _data_keys(create=to_sealed)
    for row_id, value, kid in rows:
        where = place(table.name, sealed, row_id)
        if to_sealed:
            box = keys.seal(encode(value), where)
            values = {sealed: box.blob, key_id: box.key_id}
        else:
            values = {plain: decode(keys.open(Sealed(kid, value), where))}
        bind.execute(table.update().where(table.c.id == row_id).values(**values))


def _body_bytes(body) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("notice_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_idempotency_key_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint(
            "organisation_id", "key_sha256", name=op.f("pk_idempotency_key")
        ),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_key_notice_id"), ["notice_id"])

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="disclosure", nullable=False)
        )
        batch_op.add_column(sa.Column("supersedes_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("jws_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("jws_key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("disclosure_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_message_supersedes_id_message"), "message", ["supersedes_id"], ["id"]
        )

    with op.batch_alter_table("release_notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("supersedes_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("body_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("body_key_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("status_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))

    # Every notice so far is the first version of its own series; its data is sealed.
    op.execute(notice.update().values(series_id=notice.c.id, version=1))
    _reseal(notice, "body", "body_sealed", "body_key_id", _body_bytes, None, to_sealed=True)
    _reseal(message, "jws", "jws_sealed", "jws_key_id", str.encode, None, to_sealed=True)

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("jws")
    with op.batch_alter_table("release_notice", schema=None) as batch_op:
        batch_op.alter_column("series_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("version", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_release_notice_received_at"), ["received_at"])
        batch_op.create_index(batch_op.f("ix_release_notice_series_id"), ["series_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_release_notice_supersedes_id_release_notice"),
            "release_notice",
            ["supersedes_id"],
            ["id"],
        )
        batch_op.drop_column("body")


def downgrade() -> None:
    # Versions, cancellations and idempotency have no place in the old schema: refuse rather
    # than lose them. Purged values cannot come back: they return as an empty body and payload.
    bind = op.get_bind()
    kept = bind.execute(sa.text(
        "SELECT (SELECT count(*) FROM release_notice WHERE version > 1)"
        " + (SELECT count(*) FROM message WHERE kind <> 'disclosure')"
    )).scalar()
    if kept:
        raise RuntimeError("0003 cannot be undone with amendments or cancellations stored")
    with op.batch_alter_table("release_notice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.JSON(), nullable=True))
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jws", sa.Text(), nullable=True))
    _reseal(notice, "body", "body_sealed", "body_key_id", None, json.loads, to_sealed=False)
    _reseal(message, "jws", "jws_sealed", "jws_key_id", None, bytes.decode, to_sealed=False)
    op.execute(notice.update().where(notice.c.body.is_(None)).values(body={}))
    op.execute(message.update().where(message.c.jws.is_(None)).values(jws=""))

    with op.batch_alter_table("release_notice", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_constraint(
            batch_op.f("fk_release_notice_supersedes_id_release_notice"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_release_notice_series_id"))
        batch_op.drop_index(batch_op.f("ix_release_notice_received_at"))
        for column in (
            "purged_at",
            "cancelled_at",
            "status_reason",
            "body_key_id",
            "body_sealed",
            "supersedes_id",
            "version",
            "series_id",
        ):
            batch_op.drop_column(column)

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.alter_column("jws", existing_type=sa.Text(), nullable=False)
        batch_op.drop_constraint(batch_op.f("fk_message_supersedes_id_message"), type_="foreignkey")
        batch_op.alter_column("disclosure_id", existing_type=sa.Uuid(), nullable=False)
        for column in ("purged_at", "jws_key_id", "jws_sealed", "supersedes_id", "kind"):
            batch_op.drop_column(column)

    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_key_notice_id"))
    op.drop_table("idempotency_key")
