"""What changes to a person's consent records log, decided without a database (pure).

The log entries of a record made, withdrawn or voided, as app/audit/entries.py writes them.
`record` is anything with a consent record's fields (app/notices/plan.Record, a row read).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.audit.entry import Entry


def recorded_entry(record: Any, *, now: datetime, **actor: Any) -> Entry:
    return Entry(
        "consent.recorded",
        at=now,
        notice_id=record.notice_id,
        **actor,
        details={
            "consent_id": str(record.id),
            "person_ref": actor["person_ref"],
            "scope": record.scope,
            "decision": record.decision,
            "expires_at": None,
        },
    )


def voided_entry(record: Any, *, now: datetime, **actor: Any) -> Entry:
    return Entry(
        "consent.voided",
        at=now,
        notice_id=record.notice_id,
        **actor,
        details={
            "consent_id": str(record.id),
            "person_ref": actor["person_ref"],
            "scope": record.scope,
        },
    )
