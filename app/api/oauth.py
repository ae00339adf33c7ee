"""The token endpoint and the published keys."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.throttle import FailureThrottle
from app.access.tokens import (
    ClientAuthFailed,
    Presented,
    authenticate_client,
    issue_access_token,
    presented,
    requested_scopes,
)
from app.api.deps import KeyRingDep, Now, Session, SettingsDep
from app.api.metrics import Metrics
from app.api.problems import PROBLEMS, documented
from app.settings import Settings
from app.storage import db
from app.storage.models import ApiClient
from app.wire.errors import Problem
from app.wire.schemas import TokenResponse

router = APIRouter(tags=["oauth"])


def _throttle(request: Request) -> FailureThrottle:
    return request.app.state.throttle


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


@router.post(
    "/oauth/token",
    name="token",
    response_model=TokenResponse,
    responses={
        **{s: PROBLEMS[s] for s in (400, 401, 422, 503)},
        429: documented("Too many failed attempts from here for this client: see Retry-After."),
    },
)
async def token(
    request: Request,
    response: Response,
    session: Session,
    keyring: KeyRingDep,
    settings: SettingsDep,
    now: Now,
    throttle: Annotated[FailureThrottle, Depends(_throttle)],
    metrics: Annotated[Metrics, Depends(_metrics)],
    grant_type: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    client_assertion_type: Annotated[str | None, Form()] = None,
    client_assertion: Annotated[str | None, Form()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> TokenResponse:
    """OAuth 2.0 client credentials: the client proves itself with its secret
    (client_secret_basic) or with an assertion signed by its key (private_key_jwt, RFC 7523),
    and gets a short-lived access token (RFC 9068)."""
    try:
        proof = presented(authorization, client_assertion_type, client_assertion)
    except ClientAuthFailed as failure:
        metrics.client_auth_failures.labels(failure.reason).inc()
        raise
    source = (proof.client_id, request.client.host if request.client else "")
    client = await _authenticated(
        session,
        proof,
        source=source,
        throttle=throttle,
        metrics=metrics,
        settings=settings,
        now=now,
    )
    _check_grant_type(grant_type)
    scopes = requested_scopes(client, scope)
    ttl = settings.access_token_ttl_seconds
    access_token = issue_access_token(
        keyring, issuer=settings.issuer, client=client, scopes=scopes, ttl=ttl
    )
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 section 5.1
    return TokenResponse(access_token=access_token, expires_in=ttl, scope=" ".join(sorted(scopes)))


async def _authenticated(
    session: AsyncSession,
    proof: Presented,
    *,
    source: tuple[str, str],
    throttle: FailureThrottle,
    metrics: Metrics,
    settings: Settings,
    now: datetime,
) -> ApiClient:
    """The client the proof belongs to; 429 while its source is throttled, 401 if it fails."""
    wait = throttle.retry_after(source, time.monotonic())
    if wait > 0:
        metrics.client_auth_throttled.inc()
        raise Problem(
            429,
            "Too many attempts",
            "Too many failed authentications for this client from here; try again later.",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    # Counted as a failure before anything is awaited, so parallel guesses cannot slip past the
    # limit while the first ones are still being checked; a success wipes the slate.
    counted = time.monotonic()
    throttle.failed(source, counted)
    try:
        client, _ = await authenticate_client(
            session, proof, token_endpoint=settings.token_endpoint, now=now
        )
    except ClientAuthFailed as failure:
        metrics.client_auth_failures.labels(failure.reason).inc()
        raise
    except Exception as exc:
        if db.outage(exc):  # nothing was checked: a database outage is no guess
            throttle.withdraw(source, counted)
        raise
    throttle.succeeded(source)
    return client


def _check_grant_type(grant_type: str | None) -> None:
    if grant_type is None:
        raise Problem(
            400, "Invalid request", "grant_type is required.", extra={"error": "invalid_request"}
        )
    if grant_type != "client_credentials":
        raise Problem(
            400,
            "Unsupported grant type",
            "Only the client_credentials grant is supported.",
            extra={"error": "unsupported_grant_type"},
        )


@router.get("/.well-known/jwks.json", name="jwks")
async def jwks(keyring: KeyRingDep, now: Now) -> dict[str, list[dict[str, str]]]:
    """The public keys that verify signed messages and access tokens, selected by `kid`: the
    current key and those retired less than the grace period ago. Every key ever used, for
    older messages, is at /v1/signing-keys."""
    return keyring.jwks(now)
