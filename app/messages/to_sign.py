"""A message a plan sends, before it is signed (pure): the planners say what to send, the use
case signs it (app/messages/signed.draft) and stores it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToSign:
    """A message to sign for one recipient: its id, its claims, what it supersedes, and the
    notice it is about where a plan sends about several (None: the plan's own notice)."""

    kind: str
    message_id: uuid.UUID
    organisation: Any
    claims: dict[str, Any]
    disclosure_id: uuid.UUID | None = None
    supersedes: uuid.UUID | None = None
    notice_id: uuid.UUID | None = None
