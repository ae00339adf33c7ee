"""Stopping messages that no longer stand, decided without a database (pure).

Planned for every message a use case stops: given the messages of a notice (or a person) and
their deliveries as read (locked) in the caller's transaction (app/messages/retraction.py),
which deliveries stop and in which state, which messages are revoked (never sent), the log
entries, and what each recipient may still hold after all, to be told it no longer stands. The
caller writes the plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.audit.entry import Entry
from app.messages.kinds import CANCELLATION, DISCLOSURE
from app.messages.states import PENDING, REVOKED, SUPERSEDED

CONSENT_WITHDRAWN = "consent_withdrawn"  # the `why` of a retraction a lost consent causes


@dataclass(frozen=True)
class Held:
    """A message as read: a disclosure or a cancellation (or a consent withdrawal)."""

    id: uuid.UUID
    kind: str
    notice_id: uuid.UUID
    recipient_id: uuid.UUID
    revoked: bool = False


@dataclass(frozen=True)
class Attempt:
    """A delivery of a message as read: its state, its lease and how often it was tried."""

    id: uuid.UUID
    message_id: uuid.UUID
    state: str
    leased_until: datetime | None
    attempts: int


@dataclass(frozen=True)
class Stop:
    """A delivery that is no longer to be tried: its new state, and why."""

    delivery_id: uuid.UUID
    state: str
    why: str


class Retraction:
    """The plan of stopping messages, made one retraction at a time over what was read once.

    `messages` are in the order they were made (app/messages/signed.made_in_order), those
    already revoked included; `deliveries` are theirs."""

    def __init__(
        self, messages: Sequence[Held], deliveries: Iterable[Attempt], *, now: datetime
    ) -> None:
        self.now = now
        self.messages = tuple(messages)
        self._revoked = {m.id for m in messages if m.revoked}
        self._deliveries: dict[uuid.UUID, list[Attempt]] = {}
        for delivery in sorted(deliveries, key=lambda d: d.id):
            self._deliveries.setdefault(delivery.message_id, []).append(delivery)
        self.stops: dict[uuid.UUID, Stop] = {}
        self.revoked: list[uuid.UUID] = []  # revoked now, in the order planned
        self.entries: list[Entry] = []

    def held(self) -> dict[uuid.UUID, Held]:
        """Per recipient, the latest message it holds: a disclosure or a cancellation not
        revoked (as app/messages/signed.held reads it), recipients in the order first made to."""
        holders: dict[uuid.UUID, Held] = {}
        for message in self.messages:
            if message.id not in self._revoked and message.kind in (DISCLOSURE, CANCELLATION):
                holders[message.recipient_id] = message
        return holders

    def retract(self, message: Held, why: str) -> bool:
        """Stop a message that is no longer to be sent, because a later one supersedes it
        (`why` "superseded" or "cancelled") or its consent was withdrawn. True if it is revoked
        (it had deliveries, none claimed or tried: its recipient never got it, and never will),
        or was already; False if its recipient may hold it. Any attempt may have reached the
        receiver, even one recorded as failed, and so may one claimed but never settled (its
        worker died, perhaps after sending): only a message never claimed is certainly unseen.
        Either way its pending deliveries not in flight stop: superseded if it is kept but no
        longer sent, else revoked."""
        if message.id in self._revoked:
            return True
        rows = self._deliveries.get(message.id, [])
        claimed = [r for r in rows if r.leased_until is not None]
        revoking = bool(rows) and not claimed and not any(r.attempts > 0 for r in rows)
        replaced = why != CONSENT_WITHDRAWN and not revoking  # kept, but no longer sent
        for row in rows:
            in_flight = row.leased_until is not None and row.leased_until > self.now
            if row.state == PENDING and not in_flight and row.id not in self.stops:
                self.stops[row.id] = Stop(row.id, SUPERSEDED if replaced else REVOKED, why)
        if not revoking:
            return False
        self._revoked.add(message.id)
        self.revoked.append(message.id)
        self.entries.append(
            Entry(
                "message.revoked",
                at=self.now,
                notice_id=message.notice_id,
                message_id=message.id,
                subject_organisation_id=message.recipient_id,
                details={"reason": why},
            )
        )
        return True

    def message(self, message_id: uuid.UUID) -> Held:
        return next(m for m in self.messages if m.id == message_id)

    def retract_held(self, message: Held, why: str) -> Held | None:
        """Stop a disclosure its recipient holds and, while each is revoked, the one it held
        before. What the recipient may hold after all; None if nothing (or a cancellation)."""
        before = [
            m
            for m in self.messages[: self.messages.index(message)]
            if m.recipient_id == message.recipient_id
            and m.kind in (DISCLOSURE, CANCELLATION)
            and m.id not in self._revoked
        ]
        for held in [message, *reversed(before)]:
            if held.kind != DISCLOSURE:
                return None
            if not self.retract(held, why):
                return held
        return None
