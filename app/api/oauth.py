"""The token endpoint and the published keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Header, Response

from app.api.deps import KeyRingDep, SettingsDep
from app.auth import authenticate_client, issue_access_token, requested_scopes
from app.db import Session
from app.errors import Problem
from app.problems import PROBLEMS
from app.schemas import TokenResponse

router = APIRouter(tags=["oauth"])


@router.post(
    "/oauth/token",
    name="token",
    response_model=TokenResponse,
    responses={s: PROBLEMS[s] for s in (400, 401, 422)},
)
async def token(
    response: Response,
    session: Session,
    keyring: KeyRingDep,
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> TokenResponse:
    """OAuth 2.0 client credentials with client_secret_basic: a short-lived access token."""
    client, _ = await authenticate_client(session, authorization)
    if grant_type is None:
        raise Problem(
            400,
            "Invalid request",
            "grant_type is required.",
            extra={"error": "invalid_request"},
        )
    if grant_type != "client_credentials":
        raise Problem(
            400,
            "Unsupported grant type",
            "Only the client_credentials grant is supported.",
            extra={"error": "unsupported_grant_type"},
        )
    scopes = requested_scopes(client, scope)
    ttl = settings.access_token_ttl_seconds
    access_token = issue_access_token(
        keyring, issuer=settings.issuer, client=client, scopes=scopes, ttl=ttl
    )
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 section 5.1
    return TokenResponse(access_token=access_token, expires_in=ttl, scope=" ".join(sorted(scopes)))


@router.get("/.well-known/jwks.json", name="jwks")
async def jwks(keyring: KeyRingDep) -> dict[str, list[dict[str, str]]]:
    """The public keys that verify signed messages and access tokens, selected by `kid`."""
    return keyring.jwks()
