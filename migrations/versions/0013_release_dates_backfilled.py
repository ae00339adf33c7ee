"""release dates backfilled: the notices stored before 0011 get their release date in clear

0011 kept a notice's release date in clear from then on and left NULL the notices stored before
it. Each of those whose sealed body is still held (not purged) now gets the date its body holds,
read with the data keys as 0009 does, a batch at a time by id (one UPDATE per batch), so a large
table never sits in memory. A body that cannot be opened (an unknown data key, altered), or that
holds no release date, is left NULL and counted in a warning rather than stop the upgrade. With
no notice to backfill the data keys are not loaded (a fresh database has none).

After this, a NULL release date means the body was purged or could not be opened: nothing opens
a body to find a notice's release date any more (app/messages/acknowledgements.py).

Going down undoes nothing: the dates are copies of what the bodies hold.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-22 09:00:00
"""

import json
import logging
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import context, op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

log = logging.getLogger("exchange.migrate")
notice = sa.table(
    "release_notice",
    sa.column("id", sa.Uuid()),
    sa.column("body_sealed", sa.LargeBinary()),
    sa.column("body_key_id", sa.String()),
    sa.column("release_date", sa.Date()),
    sa.column("purged_at", sa.DateTime(timezone=True)),
)

BATCH = 1000  # notices read, and their dates written, at a time


def upgrade() -> None:
    bind = op.get_bind()
    undated = (
        sa.select(notice.c.id, notice.c.body_sealed, notice.c.body_key_id)
        .where(
            notice.c.release_date.is_(None),
            notice.c.body_sealed.is_not(None),
            notice.c.body_key_id.is_not(None),
            notice.c.purged_at.is_(None),
        )
        .order_by(notice.c.id)
        .limit(BATCH)
    )
    dated = (
        notice.update()
        .where(notice.c.id == sa.bindparam("b_id", type_=sa.Uuid()))
        .values(release_date=sa.bindparam("b_release_date", type_=sa.Date()))
    )
    keys, unreadable, after = None, 0, None
    while True:
        rows = bind.execute(undated if after is None else undated.where(notice.c.id > after)).all()
        if not rows:
            break
        after = rows[-1].id
        if keys is None:
            keys = _data_keys()
        found = []
        for row in rows:
            released = _release_date(keys, row)
            if released is None:  # left NULL, as if purged
                unreadable += 1
                continue
            found.append({"b_id": row.id, "b_release_date": released})
        if found:
            bind.execute(dated, found)
    if unreadable:
        log.warning(
            "0013: %d stored notice bodies could not be opened (unknown data key or altered) or "
            "held no release date: their release_date stays NULL, as if purged",
            unreadable,
        )


def _data_keys() -> Any:
    from app.keys.sealing import load_data_keys
    from app.settings import Settings

    keys_dir = context.config.attributes.get("data_keys_dir") or Settings().sealing_keys_dir
    return load_data_keys(keys_dir, create=False)  # new keys could not open what is stored


def _release_date(keys: Any, row: Any) -> date | None:
    """The release date the notice's body holds, or None if the body cannot be opened (an
    unknown data key, altered) or holds none (a body purged before 0003 comes back as {})."""
    from app.keys.sealing import Sealed, SealError, place

    try:
        sealed = Sealed(row.body_key_id, row.body_sealed)
        body = json.loads(keys.open(sealed, place("release_notice", "body_sealed", row.id)))
    except SealError:
        return None
    try:
        return date.fromisoformat(body["release"]["release_date"])
    except (KeyError, TypeError, ValueError):
        return None


def downgrade() -> None:
    """Nothing to undo: the release dates set are copies of what the sealed bodies hold, as
    intake keeps them for every notice since 0011; 0011's own downgrade drops the column."""
