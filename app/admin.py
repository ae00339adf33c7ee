"""The operator's use cases: organisations and their API clients. Never commits."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.identity import KIND_SCOPES, ORGANISATION_KINDS, hash_secret, new_client_credentials
from app.models import ApiClient, Organisation

CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,31}$")


class AdminError(ValueError):
    """A request the operator must correct; the message says how."""


async def add_organisation(
    session: AsyncSession, *, kind: str, code: str, name: str, now: datetime
) -> Organisation:
    if kind not in ORGANISATION_KINDS:
        raise AdminError(f"kind must be one of {', '.join(ORGANISATION_KINDS)}")
    if not CODE.match(code):
        raise AdminError("code must be 2-32 capital letters, digits or hyphens")
    if not name.strip() or len(name) > 200:
        raise AdminError("name must be 1-200 characters")
    if await session.scalar(select(Organisation.id).where(Organisation.code == code)):
        raise AdminError(f"an organisation with code {code} already exists")
    organisation = Organisation(
        id=uuid.uuid4(), code=code, kind=kind, name=name.strip(), message_sequence=0, created_at=now
    )
    session.add(organisation)
    audit.append(
        session,
        "organisation.created",
        at=now,
        subject_organisation_id=organisation.id,
        details={"code": code, "kind": kind},
    )
    return organisation


async def add_client(
    session: AsyncSession, *, organisation_code: str, scopes: str | None, now: datetime
) -> tuple[ApiClient, str]:
    """A client of the organisation; returns it with its secret, which is stored only hashed."""
    organisation = await session.scalar(
        select(Organisation).where(Organisation.code == organisation_code)
    )
    if organisation is None:
        raise AdminError(f"no organisation with code {organisation_code}")
    allowed = KIND_SCOPES[organisation.kind]
    granted = frozenset(scopes.split()) if scopes else allowed
    if not granted or not granted <= allowed:
        raise AdminError(f"a {organisation.kind} client may have only: {' '.join(sorted(allowed))}")
    client_id, secret = new_client_credentials()
    client = ApiClient(
        id=uuid.uuid4(),
        client_id=client_id,
        organisation_id=organisation.id,
        secret_sha256=hash_secret(secret),
        scopes=" ".join(sorted(granted)),
        created_at=now,
    )
    session.add(client)
    audit.append(
        session,
        "client.created",
        at=now,
        actor_client_id=None,
        subject_organisation_id=organisation.id,
        details={"client_id": client_id, "scopes": client.scopes},
    )
    return client, secret
