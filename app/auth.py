"""Who is calling: client authentication, access tokens, scopes and the caller dependency."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import jose
from app.db import Session
from app.errors import Problem
from app.identity import KIND_SCOPES, Caller, Scope, hash_secret
from app.models import ApiClient, Organisation

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT typ, not a secret


def _unauthorised(detail: str, *, scheme: str = "Bearer", error: str | None = None) -> Problem:
    challenge = f'{scheme} realm="nps-exchange"' + (f', error="{error}"' if error else "")
    extra = {"error": error} if error else {}
    return Problem(
        401, "Unauthorised", detail, headers={"WWW-Authenticate": challenge}, extra=extra
    )


async def authenticate_client(
    session: AsyncSession, authorization: str | None
) -> tuple[ApiClient, Organisation]:
    """client_secret_basic (RFC 6749 section 2.3.1): the client and its organisation, or 401."""
    invalid = _unauthorised("Client authentication failed.", scheme="Basic", error="invalid_client")
    if not authorization or not authorization.lower().startswith("basic "):
        raise invalid
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        client_id, secret = decoded.split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    row = (
        await session.execute(
            select(ApiClient, Organisation)
            .join(Organisation, Organisation.id == ApiClient.organisation_id)
            .where(ApiClient.client_id == client_id)
        )
    ).first()
    expected = row[0].secret_sha256 if row else hash_secret(secrets.token_hex(16))
    matches = hmac.compare_digest(expected, hash_secret(secret))
    if row is None or not matches or row[0].disabled_at or row[1].disabled_at:
        raise invalid
    return row[0], row[1]


def issue_access_token(
    ring: jose.KeyRing, *, issuer: str, client: ApiClient, scopes: frozenset[str], ttl: int
) -> str:
    """An RFC 9068 access token for the exchange's own API."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": issuer,
        "sub": client.client_id,
        "client_id": client.client_id,
        "scope": " ".join(sorted(scopes)),
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
    }
    return jose.sign(ring, claims, typ=ACCESS_TOKEN_TYPE)


def requested_scopes(client: ApiClient, requested: str | None) -> frozenset[str]:
    granted = frozenset(client.scopes.split())
    if not requested:
        return granted
    asked = frozenset(requested.split())
    if not asked <= granted:
        raise Problem(
            400,
            "Invalid scope",
            "The client may not have one or more of the requested scopes.",
            extra={"error": "invalid_scope"},
        )
    return asked


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /oauth/token.")


async def current_caller(
    request: Request,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Verify the bearer token, then check its client and organisation are still enabled."""
    if credentials is None:
        raise _unauthorised("An access token is required.")
    state = request.app.state
    try:
        claims = jose.verify_jwt(
            state.keyring,
            credentials.credentials,
            typ=ACCESS_TOKEN_TYPE,
            audience=state.settings.issuer,
            issuer=state.settings.issuer,
        )
    except jose.TokenError:
        raise _unauthorised("The access token is not valid.", error="invalid_token") from None
    row = (
        await session.execute(
            select(ApiClient, Organisation)
            .join(Organisation, Organisation.id == ApiClient.organisation_id)
            .where(ApiClient.client_id == str(claims.get("client_id")))
        )
    ).first()
    if row is None or row[0].disabled_at or row[1].disabled_at:
        raise _unauthorised("The access token is not valid.", error="invalid_token")
    client, organisation = row
    # A token never carries more than the client holds now, nor than its organisation's kind allows.
    allowed = set(client.scopes.split()) & set(KIND_SCOPES.get(organisation.kind, ()))
    scopes = frozenset(str(claims.get("scope", "")).split()) & allowed
    return Caller(client.client_id, organisation.id, organisation.code, organisation.kind, scopes)


def require(scope: Scope):
    async def dependency(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if scope not in caller.scopes:
            raise Problem(403, "Forbidden", f"This needs the {scope.value!r} scope.")
        return caller

    dependency.__name__ = f"require_{scope.name.lower()}"
    return dependency


# Annotated aliases: a handler says which scope it needs by the type of its caller parameter.
PrisonCaller = Annotated[Caller, Depends(require(Scope.RELEASE_NOTICES_WRITE))]
RecipientReader = Annotated[Caller, Depends(require(Scope.MESSAGES_READ))]
SubscriptionWriter = Annotated[Caller, Depends(require(Scope.SUBSCRIPTIONS_WRITE))]
AuditReader = Annotated[Caller, Depends(require(Scope.AUDIT_READ))]
