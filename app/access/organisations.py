"""The operator's use cases: organisations and their API clients. Never commits."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import (
    KIND_SCOPES,
    ORGANISATION_KINDS,
    Caller,
    hash_secret,
    new_client_credentials,
)
from app.audit import entries as audit
from app.keys import jose
from app.storage.models import ApiClient, Organisation
from app.wire.base import is_one_line

CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,31}$")


class AdminError(ValueError):
    """A request the operator must correct; the message says how, and `pointer` which member of
    the API's request body it concerns ("" for none in particular)."""

    def __init__(
        self, message: str, *, missing: bool = False, conflict: bool = False, pointer: str = ""
    ) -> None:
        super().__init__(message)
        self.missing, self.conflict, self.pointer = missing, conflict, pointer


async def add_organisation(
    session: AsyncSession,
    *,
    kind: str,
    code: str,
    name: str,
    now: datetime,
    actor: Caller | None = None,
) -> Organisation:
    if kind not in ORGANISATION_KINDS:
        raise AdminError(f"kind must be one of {', '.join(ORGANISATION_KINDS)}", pointer="/kind")
    if not CODE.fullmatch(code):
        raise AdminError("code must be 2-32 capital letters, digits or hyphens", pointer="/code")
    if not name.strip() or len(name) > 200 or not is_one_line(name):
        raise AdminError("name must be 1-200 characters on one line", pointer="/name")
    if await session.scalar(select(Organisation.id).where(Organisation.code == code)):
        raise AdminError(f"an organisation with code {code} already exists", conflict=True)
    organisation = Organisation(
        id=uuid.uuid4(), code=code, kind=kind, name=name.strip(), message_sequence=0, created_at=now
    )
    session.add(organisation)
    log_change(
        session, "organisation.created", now, organisation=organisation, actor=actor, kind=kind
    )
    return organisation


async def add_client(
    session: AsyncSession,
    *,
    organisation_code: str,
    scopes: str | None,
    now: datetime,
    public_key: str | None = None,
    actor: Caller | None = None,
) -> tuple[ApiClient, str | None]:
    """A client of the organisation, with its secret (stored only hashed) or, given a public
    key (PEM or JWK), none: it will sign assertions instead (private_key_jwt)."""
    organisation = await organisation_by_code(session, organisation_code)
    allowed = KIND_SCOPES[organisation.kind]
    if scopes is not None and not scopes.strip():
        raise AdminError(
            "give at least one scope, or leave scopes out for all the kind allows",
            pointer="/scopes",
        )
    granted = frozenset(scopes.split()) if scopes is not None else allowed
    if not granted or not granted <= allowed:
        raise AdminError(
            f"a {organisation.kind} client may have only: {' '.join(sorted(allowed))}",
            pointer="/scopes",
        )
    public_jwk = None
    if public_key is not None:
        try:
            public_jwk, _ = jose.public_verifier(public_key)
        except ValueError as exc:
            raise AdminError(str(exc), pointer="/public_key") from None
    client_id, secret = new_client_credentials()
    client = ApiClient(
        id=uuid.uuid4(),
        client_id=client_id,
        organisation_id=organisation.id,
        secret_sha256=None if public_jwk else hash_secret(secret),
        public_jwk=public_jwk,
        scopes=" ".join(sorted(granted)),
        created_at=now,
    )
    session.add(client)
    method = "private_key_jwt" if public_jwk else "client_secret_basic"
    log_change(
        session,
        "client.created",
        now,
        organisation=organisation,
        actor=actor,
        client_id=client_id,
        method=method,
    )
    return client, None if public_jwk else secret


async def organisation_by_code(session: AsyncSession, code: str) -> Organisation:
    organisation = await session.scalar(select(Organisation).where(Organisation.code == code))
    if organisation is None:
        raise AdminError(f"no organisation with code {code}", missing=True)
    return organisation


async def client_of(
    session: AsyncSession, organisation_code: str, client_id: str
) -> tuple[Organisation, ApiClient]:
    organisation = await organisation_by_code(session, organisation_code)
    client = await session.scalar(
        select(ApiClient).where(
            ApiClient.client_id == client_id, ApiClient.organisation_id == organisation.id
        )
    )
    if client is None:
        raise AdminError(f"no client {client_id} in {organisation_code}", missing=True)
    return organisation, client


async def disable_organisation(
    session: AsyncSession, code: str, *, now: datetime, actor: Caller | None = None
) -> Organisation:
    """Its clients' tokens stop working at once; its messages and log entries stay."""
    organisation = await organisation_by_code(session, code)
    if actor is not None and actor.organisation_id == organisation.id:
        raise AdminError("an operator cannot disable its own organisation", conflict=True)
    if organisation.disabled_at is None:
        organisation.disabled_at = now
        log_change(session, "organisation.disabled", now, organisation=organisation, actor=actor)
    return organisation


async def disable_client(
    session: AsyncSession,
    organisation_code: str,
    client_id: str,
    *,
    now: datetime,
    actor: Caller | None = None,
) -> ApiClient:
    organisation, client = await client_of(session, organisation_code, client_id)
    if client.disabled_at is None:
        client.disabled_at = now
        log_change(
            session,
            "client.disabled",
            now,
            organisation=organisation,
            actor=actor,
            client_id=client_id,
        )
    return client


async def rotate_secret(
    session: AsyncSession,
    organisation_code: str,
    client_id: str,
    *,
    overlap: timedelta,
    now: datetime,
    actor: Caller | None = None,
) -> tuple[ApiClient, str]:
    """A new secret; the current one keeps working until now + overlap, then never again."""
    organisation, client = await client_of(session, organisation_code, client_id)
    if client.secret_sha256 is None:
        raise AdminError("this client authenticates with its key, not a secret", conflict=True)
    _, secret = new_client_credentials()
    client.previous_secret_sha256 = client.secret_sha256 if overlap > timedelta(0) else None
    client.previous_secret_expires_at = now + overlap if overlap > timedelta(0) else None
    client.secret_sha256 = hash_secret(secret)
    log_change(
        session,
        "client.secret_rotated",
        now,
        organisation=organisation,
        actor=actor,
        client_id=client_id,
        overlap_seconds=int(overlap.total_seconds()),
    )
    return client, secret


def log_change(
    session: AsyncSession,
    action: str,
    now: datetime,
    *,
    organisation: Organisation,
    actor: Caller | None,
    **details: object,
) -> None:
    """Administrative changes are logged with who made them: an operator's client, or the CLI."""
    audit.append(
        session,
        action,
        at=now,
        actor_organisation_id=actor.organisation_id if actor else None,
        actor_client_id=actor.client_id if actor else None,
        subject_organisation_id=organisation.id,
        details={"code": organisation.code, "via": "api" if actor else "cli", **details},
    )


async def enabled_client_scopes(session: AsyncSession, organisation_id: uuid.UUID) -> set[str]:
    """The union of the scopes of an organisation's enabled clients (the console's people
    act with these)."""
    rows = await session.scalars(
        select(ApiClient.scopes).where(
            ApiClient.organisation_id == organisation_id, ApiClient.disabled_at.is_(None)
        )
    )
    return {scope for scopes in rows for scope in scopes.split()}
