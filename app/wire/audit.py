"""Wire formats of the exchange log's tree: its signed checkpoints and proofs (RFC 9162)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.wire.base import Wire

Hashes = list[str]


class CheckpointOut(Wire):
    tree_size: int = Field(description="Leaves in the tree it signs.")
    root_hash: str = Field(description="The tree's root hash (RFC 9162 MTH), standard base64.")
    signed_at: datetime = Field(description="When it was signed (whole seconds, as in the note).")
    note: str = Field(
        description="The C2SP tlog-checkpoint in a signed note (Ed25519): verify this, with a "
        "verifier key you obtained from the operator, not the one below."
    )
    verifier_key: str = Field(description="The log's signed-note verifier key, as served.")


class InclusionProofOut(Wire):
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || canonical JSON of entry), base64.")
    entry: dict[str, Any] = Field(description="The document the leaf commits to (RFC 8785).")
    hashes: Hashes = Field(description="The audit path (RFC 9162 2.1.3), leaf side first, base64.")


class ConsistencyProofOut(Wire):
    first: int
    second: int
    hashes: Hashes = Field(description="The consistency proof (RFC 9162 2.1.4), base64.")


class AuditEntryOut(Wire):
    id: int
    recorded_at: datetime
    action: str
    actor_organisation_id: uuid.UUID | None
    actor_client_id: str | None
    notice_id: uuid.UUID | None
    message_id: uuid.UUID | None
    subject_organisation_id: uuid.UUID | None
    person_ref: str | None = Field(
        description="The person the entry concerns, as a keyed hash of the NOMS number (never "
        "the number); null where it is not recorded on the entry itself."
    )
    details: dict[str, object]


class AuditPage(Wire):
    items: list[AuditEntryOut]
    next_cursor: str | None
