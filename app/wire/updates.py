"""What sharing a care update answers (the update itself is app/updates/document.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from app.wire.base import Wire
from app.wire.schemas import RoutedRecipient


class CareUpdateAccepted(Wire):
    id: uuid.UUID = Field(description="The update: the `update.id` of each message it caused.")
    series_id: uuid.UUID = Field(description="The release notice, whatever its version.")
    notice_id: uuid.UUID = Field(description="The notice version in force, the update's subject.")
    recorded_at: datetime
    closes_release: date | None = Field(
        description="A recall's day: the release is closed, its open engagement deadlines "
        "stop and it takes no more updates. Null for any other update."
    )
    recipients: list[RoutedRecipient] = Field(
        description="The release's other recipient (kind `care_update`): its message, or null "
        "when nothing was sent (the policy allowed nothing, or it holds no disclosure of the "
        "release that stands). Never the prison, never anyone not on the release plan."
    )
