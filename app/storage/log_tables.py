"""The exchange log's tables (app/audit): its entries, their leaves in the Merkle tree, the tree's
stored nodes and its signed checkpoints. Typed columns, no behaviour; beside app/storage/models.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.storage.columns import Base, BigId, CanonicalJSON, UTCDateTime


class AuditEntry(Base):
    """The exchange log: identifiers, codes and hashes only, never payload values."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor_organisation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_client_id: Mapped[str | None] = mapped_column(String(64))
    notice_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    subject_organisation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    # the organisation the event concerns: a disclosure's recipient, or the one administered
    details: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON)
    # The person the event concerns, as a keyed hash of the NOMS number (DataKeys.person_ref):
    # an auditor can search by NOMS number while the log names nobody.
    person_ref: Mapped[str | None] = mapped_column(String(64), index=True)


class AuditLeaf(Base):
    """An entry's place in the log's Merkle tree (RFC 9162): leaf_index is gap-free, given by the
    one sequencer in the order it found entries committed. Never updated or deleted."""

    __tablename__ = "audit_leaf"

    leaf_index: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    entry_id: Mapped[int] = mapped_column(ForeignKey("audit_entry.id"), unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)
    sequenced_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditNode(Base):
    """The hash of a full subtree of the log's tree: leaves [position * 2**level, (position + 1)
    * 2**level). Stored once the subtree is complete, so any proof takes O(log n) lookups."""

    __tablename__ = "audit_node"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditCheckpoint(Base):
    """A signed tree head: the C2SP checkpoint note over (tree size, root hash, time)."""

    __tablename__ = "audit_checkpoint"

    tree_size: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)
