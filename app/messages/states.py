"""The states of a delivery (pure): what app/messages/outbox.py queues and the planners stop."""

from __future__ import annotations

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
REVOKED = "revoked"  # its message may no longer be sent: revoked, withdrawn or purged
SUPERSEDED = "superseded"  # a later message replaced its message, which is no longer sent
