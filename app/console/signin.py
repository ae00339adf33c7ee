"""The pure parts of signing in with OpenID Connect: PKCE (RFC 7636, S256), state and nonce,
the return address, the ID token's checks, and who may come in. No web framework, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from app.access.identity import KIND_SCOPES
from app.keys import jose

# Only these kinds of organisation have people in the console.
CONSOLE_KINDS = ("auditor", "operator")
HOME = "/console/"
SCOPE = "openid profile nps"
MAX_SUBJECT = 255  # OpenID Connect Core 1.0, 2: sub is at most 255 ASCII characters
MAX_ROLE = 64


class SignInRefused(Exception):
    """A sign-in refused: `reason` is a code for the process log, `detail` what the person is
    told. Neither holds a token or a claim's value."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def code_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass(frozen=True)
class Attempt:
    """A sign-in under way, kept in its own short-lived signed cookie until the callback."""

    state: str
    nonce: str
    verifier: str
    return_to: str

    @classmethod
    def start(cls, return_to: str | None) -> Attempt:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),  # 64 characters: RFC 7636 asks 43 to 128
            return_to=safe_return_to(return_to),
        )

    def as_dict(self) -> dict[str, str]:
        return {"s": self.state, "n": self.nonce, "v": self.verifier, "r": self.return_to}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        try:
            return cls(str(data["s"]), str(data["n"]), str(data["v"]), safe_return_to(data["r"]))
        except (KeyError, TypeError) as error:
            raise SignInRefused(
                "attempt_unreadable", "The sign-in could not be resumed."
            ) from error


def safe_return_to(value: object) -> str:
    """Where to go after signing in: a path of the console, never another site (an open
    redirect). Anything else is the console's home."""
    if not isinstance(value, str) or not value.startswith(HOME) or len(value) > 2000:
        return HOME
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith("//") or "/../" in parts.path:
        return HOME
    return value


def authorization_url(endpoint: str, *, client_id: str, redirect_uri: str, attempt: Attempt) -> str:
    """The authorization request (OpenID Connect Core 3.1.2.1), with PKCE S256."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": attempt.state,
            "nonce": attempt.nonce,
            "code_challenge": code_challenge(attempt.verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def check_state(attempt: Attempt, state: str | None) -> None:
    if not state or not hmac.compare_digest(attempt.state.encode(), state.encode()):
        raise SignInRefused("wrong_state", "The sign-in's state does not match: start again.")


def check_id_token(
    keys: Mapping[str, jose.Verifier], token: str, *, issuer: str, client_id: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims once its signature (by a key of the provider, by kid, held to
    that key's algorithm), iss, aud, exp, iat, sub and nonce hold (Core 3.1.3.7)."""
    try:
        claims = jose.verify_jwt(
            keys, token, typ=None, audience=client_id, issuer=issuer, require=("sub",)
        )
    except jose.TokenError as error:
        raise SignInRefused(
            "bad_id_token", f"The identity provider's answer was not accepted ({error})."
        ) from error
    # aud is the console, or a list holding it with azp the console (Core 3.1.3.7 (3)-(5)):
    # a token minted for another relying party that lists the console too is not a sign-in.
    aud, azp = claims.get("aud"), claims.get("azp")
    single = aud == client_id or aud == [client_id]
    if (azp is not None and azp != client_id) or (not single and azp != client_id):
        raise SignInRefused("bad_id_token", "The identity token was issued to another service.")
    given = claims.get("nonce")
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
        raise SignInRefused("wrong_nonce", "The identity token does not answer this sign-in.")
    sub = claims["sub"]
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT:
        raise SignInRefused("bad_id_token", "The identity token names no person.")
    return claims


@dataclass(frozen=True)
class Person:
    """Who is signed in: their subject at the provider, their organisation and role."""

    sub: str
    organisation_code: str
    role: str | None

    @property
    def actor(self) -> str:
        """How the log names them (actor_client_id, 64 characters at most): their subject, or
        for a long one its hash, so that each person keeps one name."""
        name = "person:" + self.sub
        if len(name) <= 64:
            return name
        return "person:sha256:" + hashlib.sha256(self.sub.encode()).hexdigest()[:50]


def person_of(claims: Mapping[str, Any], *, organisation_claim: str, role_claim: str) -> Person:
    organisation = claims.get(organisation_claim)
    if not isinstance(organisation, str) or not organisation:
        raise SignInRefused(
            "no_organisation", "Your account does not say which organisation you work for."
        )
    role = claims.get(role_claim)
    # shown and logged: a role of any length or with control characters is dropped, not kept
    kept = isinstance(role, str) and 0 < len(role) <= MAX_ROLE and role.isprintable()
    return Person(str(claims["sub"]), organisation, role if kept else None)


def admitted(kind: str, *, disabled: bool, client_scopes: Iterable[str]) -> frozenset[str]:
    """The scopes a person of an organisation of this kind acts with: the union of their
    organisation's enabled clients' scopes (`client_scopes`), never more than the kind allows.
    Refused unless it is an auditor or operator organisation, enabled, with such a scope."""
    if kind not in CONSOLE_KINDS:
        raise SignInRefused(
            "kind_refused",
            "The console is for people of auditor and operator organisations only.",
        )
    if disabled:
        raise SignInRefused("organisation_disabled", "Your organisation is disabled.")
    scopes = frozenset(client_scopes) & {s.value for s in KIND_SCOPES[kind]}
    if not scopes:
        raise SignInRefused(
            "no_scopes_refused",
            "Your organisation's API clients hold no scope, so neither do its people.",
        )
    return scopes
