"""The exchange log as NDJSON, for auditors: the latest checkpoint first, then every leaf it
covers, in order, with the entry it commits to. Self-checking: the checkpoint's note verifies
with the verifier key, and the leaves' hashes rebuild its root."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import tree as log_tree
from app.storage.log_tables import AuditEntry, AuditLeaf

BATCH = 2000


def _line(document: dict[str, object]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


async def lines(session: AsyncSession, verifier_key: str) -> AsyncIterator[bytes]:
    """The export, a line at a time, read in batches (a million entries never sit in memory)."""
    latest = await log_tree.latest_checkpoint(session)
    size = latest.tree_size if latest else 0
    yield _line(
        {
            "checkpoint": {
                "tree_size": size,
                "root_hash": base64.b64encode(latest.root_hash).decode() if latest else None,
                "signed_at": latest.signed_at.isoformat() if latest else None,
                "note": latest.note if latest else None,
                "verifier_key": verifier_key,
            }
        }
    )
    after = -1
    while after + 1 < size:
        rows = (
            await session.execute(
                select(AuditLeaf.leaf_index, AuditLeaf.leaf_hash, AuditEntry)
                .join(AuditEntry, AuditEntry.id == AuditLeaf.entry_id)
                .where(AuditLeaf.leaf_index > after, AuditLeaf.leaf_index < size)
                .order_by(AuditLeaf.leaf_index)
                .limit(BATCH)
            )
        ).all()
        if not rows:
            return
        for leaf_index, leaf_hash, entry in rows:
            yield _line(
                {
                    "leaf_index": leaf_index,
                    "leaf_hash": base64.b64encode(leaf_hash).decode(),
                    "entry": log_tree.entry_document(entry),
                }
            )
        after = rows[-1][0]
