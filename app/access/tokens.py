"""Who is calling: client authentication, access tokens, and the caller a token names."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.identity import CLIENT_ID, KIND_SCOPES, Caller, hash_secret
from app.access.organisations import CODE
from app.keys import jose
from app.storage.models import ApiClient, ClientAssertion, Organisation
from app.wire.base import is_one_line
from app.wire.errors import Problem

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT typ, not a secret
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 300
MAX_TOKEN_LIFETIME = 300  # RFC 9068 access tokens, ours or a trusted issuer's
_CLIENT_ID = re.compile(CLIENT_ID)
NO_HASH = "!" * 64  # not hex: no SHA-256 digest is ever equal to it
TRUSTED_ISSUER_KINDS = frozenset({"prison", "probation_provider", "substance_misuse_service"})


@dataclass(frozen=True)
class TrustedIssuer:
    """An external OAuth server whose access tokens the exchange accepts (read at start-up)."""

    issuer: str
    keys: dict[str, jose.Verifier]
    organisation_claim: str


def _unauthorised(detail: str, *, scheme: str = "Bearer", error: str | None = None) -> Problem:
    challenge = f'{scheme} realm="nps-exchange"' + (f', error="{error}"' if error else "")
    extra = {"error": error} if error else {}
    return Problem(
        401, "Unauthorised", detail, headers={"WWW-Authenticate": challenge}, extra=extra
    )


class ClientAuthFailed(Problem):
    """401 invalid_client. Why it failed is counted in metrics, never told to the caller: that
    a secret was right but the client disabled, say, is worth knowing to an attacker."""

    def __init__(self, reason: str) -> None:
        failed = _unauthorised(
            "Client authentication failed.", scheme="Basic", error="invalid_client"
        )
        super().__init__(
            failed.status, failed.title, failed.detail, headers=failed.headers, extra=failed.extra
        )
        self.reason = reason


def client_failure(reason: str) -> ClientAuthFailed:
    return ClientAuthFailed(reason)


# --- client authentication (RFC 6749 section 2.3, RFC 7523) --------------------------------


@dataclass(frozen=True)
class Presented:
    """What a token request offers as proof: a secret (Basic) or a signed assertion."""

    client_id: str
    secret: str | None = None
    assertion: str | None = None


def presented(
    authorization: str | None, assertion_type: str | None, assertion: str | None
) -> Presented:
    """Read the credentials without trusting them: 401 when there are none that can be read."""
    if assertion is not None or assertion_type is not None:
        if assertion_type != JWT_BEARER or not assertion or authorization:
            raise client_failure("malformed")
        claimed = jose.unverified_claims(assertion)
        client_id = claimed.get("sub") if claimed else None
        if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
            raise client_failure("malformed")
        return Presented(client_id, assertion=assertion)
    if not authorization or not authorization.lower().startswith("basic "):
        raise client_failure("missing")
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        client_id, secret = decoded.split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise client_failure("malformed") from None
    # It keys the throttle (bound its memory) and is looked up: no NUL may reach PostgreSQL.
    if not _CLIENT_ID.fullmatch(client_id):
        raise client_failure("malformed")
    return Presented(client_id, secret=secret)


async def authenticate_client(
    session: AsyncSession, proof: Presented, *, token_endpoint: str, now: datetime
) -> tuple[ApiClient, Organisation]:
    """The enabled client the proof belongs to, and its organisation; or 401."""
    row = (
        await session.execute(
            select(ApiClient, Organisation)
            .join(Organisation, Organisation.id == ApiClient.organisation_id)
            .where(ApiClient.client_id == proof.client_id)
        )
    ).first()
    client = row[0] if row else None
    if proof.secret is not None:
        if not _secret_matches(client, proof.secret, now):
            raise client_failure("bad_secret")
    elif client is None or client.public_jwk is None:
        raise client_failure("bad_assertion")
    else:
        await _check_assertion(
            session, client, proof.assertion or "", token_endpoint=token_endpoint, now=now
        )
    assert row is not None and client is not None
    if client.disabled_at or row[1].disabled_at:
        raise client_failure("disabled")
    return client, row[1]


def _secret_matches(client: ApiClient | None, secret: str, now: datetime) -> bool:
    """Constant-time against the current hash and, within its overlap, the previous one.

    A hash that is absent (a key-only client, no rotation under way) matches nothing: the
    comparison still runs, against a value no secret hashes to, so timing tells nothing.
    """
    offered = hash_secret(secret)
    current = client.secret_sha256 if client else None
    previous = client.previous_secret_sha256 if client else None
    overlap = client is not None and client.previous_secret_expires_at is not None
    overlap = overlap and client.previous_secret_expires_at > now  # type: ignore[union-attr]
    ok = hmac.compare_digest(current or NO_HASH, offered) and current is not None
    ok_previous = hmac.compare_digest(previous or NO_HASH, offered) and previous is not None
    return ok or (ok_previous and overlap)


async def _check_assertion(
    session: AsyncSession, client: ApiClient, assertion: str, *, token_endpoint: str, now: datetime
) -> None:
    assert client.public_jwk is not None
    verifier = jose.verifier_from_jwk(client.public_jwk)
    try:
        claims = jose.verify_jwt(
            {verifier.kid: verifier},
            assertion,
            typ=None,
            audience=token_endpoint,
            issuer=client.client_id,
            require=("sub", "jti"),
            max_lifetime=MAX_ASSERTION_LIFETIME,
            kid_optional=True,
        )
    except jose.TokenError:
        raise client_failure("bad_assertion") from None
    jti = claims.get("jti")
    if claims.get("sub") != client.client_id or not isinstance(jti, str) or not jti.strip():
        raise client_failure("bad_assertion")
    if not is_one_line(jti):  # it is stored: one line of Unicode, never NUL
        raise client_failure("bad_assertion")
    if not await _first_use(session, client.client_id, jti[:200], claims=claims, now=now):
        raise client_failure("replayed_assertion")


async def _first_use(
    session: AsyncSession, client_id: str, jti: str, *, claims: dict, now: datetime
) -> bool:
    """Record the assertion's jti; False if it was seen before. Expired ids are forgotten."""
    await session.execute(delete(ClientAssertion).where(ClientAssertion.expires_at < now))
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    # Kept one second past the last instant the assertion verifies (exp is whole seconds).
    expires = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(
        seconds=jose.CLOCK_SKEW_SECONDS + 1
    )
    inserted = await session.execute(
        dialect.insert(ClientAssertion)
        .values(client_id=client_id, jti=jti, expires_at=expires)
        .on_conflict_do_nothing()
        .returning(ClientAssertion.jti)
    )
    return inserted.first() is not None


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


# --- access tokens on every request ---------------------------------------------------------


async def caller_of(
    session: AsyncSession,
    token: str,
    *,
    issuer: str,
    own_keys: dict[str, jose.Verifier],
    trusted: TrustedIssuer | None,
) -> Caller:
    """Verify a bearer token (the exchange's own, or a trusted issuer's), then check that its
    client and organisation are enabled now: disabling one stops its tokens at once. 401 if
    not."""
    invalid = _unauthorised("The access token is not valid.", error="invalid_token")
    claimed = jose.unverified_claims(token) or {}
    if claimed.get("iss") == issuer:
        keys, token_issuer = own_keys, issuer  # the current key and those in grace
    elif trusted is not None and claimed.get("iss") == trusted.issuer:
        keys, token_issuer = trusted.keys, trusted.issuer
    else:
        raise invalid
    try:
        claims = jose.verify_jwt(
            keys,
            token,
            typ=ACCESS_TOKEN_TYPE,
            audience=issuer,
            issuer=token_issuer,
            require=("sub", "jti"),
            max_lifetime=MAX_TOKEN_LIFETIME,
        )
    except jose.TokenError:
        raise invalid from None
    if token_issuer == issuer:
        caller = await _own_client(session, claims)
    else:
        assert trusted is not None
        caller = await _trusted_client(session, claims, trusted)
    if caller is None:
        raise invalid
    return caller


def no_token() -> Problem:
    """401 for a request that presents no access token."""
    return _unauthorised("An access token is required.")


def _scopes(claims: dict, *allowed: frozenset[str]) -> frozenset[str]:
    scopes = frozenset(str(claims.get("scope", "")).split())
    for bound in allowed:
        scopes &= bound
    return scopes


@functools.cache
def _own_client_query() -> Select:
    """Columns, not ORM objects, and built once: every request with a token asks this first."""
    return (
        select(
            ApiClient.client_id,
            ApiClient.scopes,
            Organisation.id,
            Organisation.code,
            Organisation.kind,
        )
        .join(Organisation, Organisation.id == ApiClient.organisation_id)
        .where(
            ApiClient.client_id == bindparam("client_id"),
            ApiClient.disabled_at.is_(None),
            Organisation.disabled_at.is_(None),
        )
    )


async def _own_client(session: AsyncSession, claims: dict) -> Caller | None:
    client = {"client_id": str(claims.get("client_id"))}
    row = (await session.execute(_own_client_query(), client)).first()
    if row is None:
        return None
    client_id, client_scopes, organisation_id, code, kind = row
    # Never more than the client holds now, nor than its organisation's kind allows.
    scopes = _scopes(claims, frozenset(client_scopes.split()), KIND_SCOPES[kind])
    return Caller(client_id, organisation_id, code, kind, scopes)


async def _trusted_client(
    session: AsyncSession, claims: dict, trusted: TrustedIssuer
) -> Caller | None:
    """An external issuer speaks for prisons and services, never for operators or auditors;
    its clients are named `ext:<client_id>` so the log tells them from the exchange's own."""
    code, client_id = claims.get(trusted.organisation_claim), claims.get("client_id")
    client_id = client_id or claims.get("sub")
    if not isinstance(code, str) or not isinstance(client_id, str):
        return None
    if not CODE.fullmatch(code) or not (client_id and _CLIENT_ID.fullmatch(f"ext:{client_id}")):
        return None  # neither is looked up or logged unless it could be one of ours
    organisation = await session.scalar(select(Organisation).where(Organisation.code == code))
    if organisation is None or organisation.disabled_at:
        return None
    if organisation.kind not in TRUSTED_ISSUER_KINDS:
        return None
    scopes = _scopes(claims, KIND_SCOPES[organisation.kind])
    return Caller(f"ext:{client_id}", organisation.id, organisation.code, organisation.kind, scopes)
