"""A recipient organisation's encryption key: while it has one, every message made for it is
signed and then encrypted to it (app/messages/signed.py). Set by the recipient itself or by the
operator. Never commits; each change is logged with the key's kid and nothing else of it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import RECIPIENT_KINDS, Caller
from app.access.organisations import AdminError, log_change, organisation_by_code
from app.keys.recipient_keys import encryption_jwk
from app.storage.models import Organisation


class KeyRefused(AdminError):
    """The key given cannot be used; the message says why."""


async def _recipient(session: AsyncSession, code: str) -> Organisation:
    organisation = await organisation_by_code(session, code)
    if organisation.kind not in RECIPIENT_KINDS:
        raise AdminError(
            f"only a recipient ({' or '.join(RECIPIENT_KINDS)}) has an encryption key,"
            f" and {organisation.code} is a {organisation.kind}"
        )
    return organisation


async def key_of(session: AsyncSession, organisation_code: str) -> dict[str, str] | None:
    """The organisation's encryption key as a public JWK, or None: its messages are signed only."""
    return (await _recipient(session, organisation_code)).encryption_jwk


async def set_key(
    session: AsyncSession,
    organisation_code: str,
    document: str,
    *,
    now: datetime,
    actor: Caller | None = None,
) -> dict[str, str]:
    """Keep the key (PEM or JWK text) as the organisation's encryption key; return its public
    JWK. Messages already made stay as they were."""
    organisation = await _recipient(session, organisation_code)
    try:
        public_jwk = encryption_jwk(document)
    except ValueError as exc:
        raise KeyRefused(f"not a usable encryption key: {exc}") from None
    if organisation.encryption_jwk != public_jwk:
        organisation.encryption_jwk = public_jwk
        log_change(
            session,
            "organisation.encryption_key_set",
            now,
            organisation=organisation,
            actor=actor,
            kid=public_jwk["kid"],
        )
    return public_jwk


async def remove_key(
    session: AsyncSession,
    organisation_code: str,
    *,
    now: datetime,
    actor: Caller | None = None,
) -> None:
    """From now on its messages are signed only. Removing no key is no change."""
    organisation = await _recipient(session, organisation_code)
    removed = organisation.encryption_jwk
    if removed is not None:
        organisation.encryption_jwk = None
        log_change(
            session,
            "organisation.encryption_key_removed",
            now,
            organisation=organisation,
            actor=actor,
            kid=removed["kid"],
        )
