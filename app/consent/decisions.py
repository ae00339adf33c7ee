"""A stored notice's body (or a care update's), opened, for what decides about it again: a lost
consent (app/consent/withdrawal.py, planned by app/consent/withdrawal_plan.py) and an
amendment's checks (app/notices/intake.py). The decisions themselves are
app/disclosure/explained.disclosure.
"""

from __future__ import annotations

import json
from typing import Any

from app.keys.sealing import DataKeys, Sealed, place
from app.storage.models import CareUpdate, StoredNotice


def body_of(data_keys: DataKeys, notice: StoredNotice | CareUpdate) -> dict[str, Any] | None:
    """A stored notice's body (or a care update's), opened; None once purged."""
    if notice.body_sealed is None or notice.body_key_id is None:
        return None
    sealed = Sealed(notice.body_key_id, notice.body_sealed)
    where = place(notice.__tablename__, "body_sealed", notice.id)
    return json.loads(data_keys.open(sealed, where))
