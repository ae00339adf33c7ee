"""The one module that touches python-jose: the exchange's keys, signing, verification, and
encryption to a recipient's key.

Algorithms are pinned (ES256 to sign; RSA-OAEP-256 with A256GCM to encrypt), keys are chosen by
`kid` from the exchange's own key ring, `typ` is checked, and token sizes are capped before
anything is parsed. The key files are app/keys/signing_keys.py's; they are read once, at start-up,
into a KeyRing that is then passed to whoever signs or verifies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwe, jwk, jws, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from app.keys.jwk import b64url_uint, kid_of, read_jwk
from app.keys.recipient_keys import CONTENT_ENCRYPTION, ENCRYPTION_ALGORITHM, RecipientKeys
from app.keys.signing_keys import ALGORITHM, read_keys, thumbprint

MAX_TOKEN_BYTES = 256 * 1024
CLOCK_SKEW_SECONDS = 60
DEFAULT_GRACE = timedelta(days=30)
CURRENT, GRACE, RETIRED = "current", "grace", "retired"


# What a crafted token can make a JSON or number parser raise, besides python-jose's own errors.
HOSTILE_INPUT = (ValueError, TypeError, OverflowError, RecursionError)


def _media_type(value: object) -> str:
    """typ is a media type: case-insensitive, and "application/" may be left out (RFC 7515)."""
    return str(value).lower().removeprefix("application/")


class TokenError(Exception):
    """A token or signed message that must not be trusted. The message names why, not the data."""


@dataclass(frozen=True)
class Verifier:
    """A public key trusted to verify tokens, and the one algorithm it may be used with."""

    kid: str
    alg: str
    key: Key


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: Key  # the private key, for signing
    verifier: Key  # its public half: python-jose's EC verify fails with a private key
    public_jwk: Mapping[str, str]
    retired_at: datetime | None = None  # when a rotation replaced it; None if it never was


@dataclass(frozen=True)
class KeyRing:
    """Every key the exchange ever signed with. The current one signs; it and those retired
    less than `grace` ago are published in the JWKS and verify access tokens; every one of
    them verifies the messages it signed, for good."""

    current: SigningKey
    by_kid: Mapping[str, SigningKey]
    grace: timedelta = DEFAULT_GRACE

    def status(self, kid: str, now: datetime) -> str:
        if kid == self.current.kid:
            return CURRENT
        retired_at = self.by_kid[kid].retired_at
        return GRACE if retired_at is not None and now < retired_at + self.grace else RETIRED

    def history(self) -> list[str]:
        """Every kid: the current one, then the others, most recently retired first."""
        others = [k for k in self.by_kid.values() if k.kid != self.current.kid]
        others.sort(key=lambda k: (k.retired_at is not None, k.retired_at or 0, k.kid))
        return [self.current.kid, *(k.kid for k in reversed(others))]

    def published(self, now: datetime | None = None) -> list[SigningKey]:
        """The current key, then the keys still in their grace period, newest first."""
        now = now or datetime.now(UTC)
        return [self.by_kid[kid] for kid in self.history() if self.status(kid, now) != RETIRED]

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        return {"keys": [dict(k.public_jwk) for k in self.published(now)]}

    def verifiers(self, now: datetime | None = None) -> dict[str, Verifier]:
        """What verifies the exchange's own access tokens: the published keys only."""
        return {k.kid: Verifier(k.kid, ALGORITHM, k.verifier) for k in self.published(now)}

    @cached_property
    def archive(self) -> dict[str, Verifier]:
        """What verifies the exchange's signed messages: every key it ever signed with."""
        return {kid: Verifier(kid, ALGORITHM, k.verifier) for kid, k in self.by_kid.items()}


def load_keyring(
    keys_dir: Path, *, create: bool = True, grace: timedelta = DEFAULT_GRACE
) -> KeyRing:
    """Read every key in keys_dir once. With create, a first key is made when there is none.
    A key file that group or others may read or write stops the load (signing_keys.KeyFileError)."""
    current_kid, stored = read_keys(keys_dir, create=create)
    by_kid = {}
    for s in stored:
        key = jwk.construct(s.private, ALGORITHM)
        by_kid[s.kid] = SigningKey(s.kid, key, key.public_key(), s.public_jwk, s.retired_at)
    return KeyRing(current=by_kid[current_kid], by_kid=by_kid, grace=grace)


def sign(ring: KeyRing, claims: Mapping[str, Any], *, typ: str) -> str:
    """A compact JWS over claims with the current key."""
    headers = {"kid": ring.current.kid, "typ": typ}
    return jws.sign(dict(claims), ring.current.key, headers=headers, algorithm=ALGORITHM)


def unverified_claims(token: str) -> dict[str, Any] | None:
    """A token's claims, NOT verified: only to choose how to verify it. None if unreadable."""
    if len(token) > MAX_TOKEN_BYTES:
        return None
    try:
        claims = jwt.get_unverified_claims(token)
    except (JOSEError, *HOSTILE_INPUT):
        return None
    return claims if isinstance(claims, dict) else None


def unverified_kid(token: str) -> str | None:
    """The kid a token's header names, NOT verified: only to know which key to fetch."""
    if len(token) > MAX_TOKEN_BYTES:
        return None
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except (JOSEError, *HOSTILE_INPUT):
        return None
    return kid if isinstance(kid, str) else None


def verify_jwt(
    keys: Mapping[str, Verifier],
    token: str,
    *,
    typ: str | None,
    audience: str,
    issuer: str,
    require: tuple[str, ...] = (),
    max_lifetime: int | None = None,
    kid_optional: bool = False,
) -> dict[str, Any]:
    """Verify a JWT with one of `keys`, chosen by the header's kid and held to that key's one
    algorithm; check typ (if given), aud, iss, exp and iat; return the claims or raise TokenError.

    With kid_optional (a client's one registered key), a token without a kid uses that key.
    """
    verifier = _chosen_verifier(keys, token, typ=typ, kid_optional=kid_optional)
    claims = _decoded(verifier, token, audience=audience, issuer=issuer, require=("exp", *require))
    if type(claims["exp"]) is not int:  # not bool, str, float
        raise TokenError("exp and iat must be whole seconds")
    if max_lifetime is not None and claims["exp"] - claims["iat"] > max_lifetime:
        raise TokenError("token lives too long")
    return claims


def verify_message(
    ring: KeyRing, token: str, *, typ: str, audience: str, issuer: str
) -> dict[str, Any]:
    """Verify a message the exchange signed (a compact JWS: a disclosure, a cancellation, ...)
    with whichever of its keys the kid names, current, in grace or long retired; check typ,
    aud, iss, iat and jti. Messages carry no exp: what was sent stays verifiable."""
    verifier = _chosen_verifier(ring.archive, token, typ=typ, kid_optional=False)
    return _decoded(verifier, token, audience=audience, issuer=issuer, require=("jti",))


def _chosen_verifier(
    keys: Mapping[str, Verifier], token: str, *, typ: str | None, kid_optional: bool
) -> Verifier:
    """The key a token's header names, once the header is held to that key's algorithm and
    the expected typ; nothing of the token is trusted yet."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("token too large")
    try:
        header = jwt.get_unverified_header(token)
    except (JOSEError, *HOSTILE_INPUT) as exc:
        raise TokenError("malformed token") from exc
    kid = header.get("kid")
    lone = next(iter(keys.values())) if kid_optional and kid is None and len(keys) == 1 else None
    verifier = lone or keys.get(str(kid))
    if verifier is None:
        raise TokenError("unknown key")
    if header.get("alg") != verifier.alg:
        raise TokenError("algorithm not allowed")
    if typ is not None and _media_type(header.get("typ")) != _media_type(typ):
        raise TokenError("wrong token type")
    return verifier


def _decoded(
    verifier: Verifier, token: str, *, audience: str, issuer: str, require: tuple[str, ...]
) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            verifier.key,
            algorithms=[verifier.alg],
            audience=audience,
            issuer=issuer,
            options={
                "leeway": CLOCK_SKEW_SECONDS,
                # python-jose skips the audience check when `aud` is absent unless required.
                "require_aud": True,
                "require_iss": True,
                "require_iat": True,
                **{f"require_{c}": True for c in require if c in ("exp", "sub", "jti")},
            },
        )
    except (JOSEError, *HOSTILE_INPUT) as exc:
        raise TokenError("invalid token") from exc
    if type(claims["iat"]) is not int:  # not bool, str, float
        raise TokenError("exp and iat must be whole seconds")
    if claims["iat"] > time.time() + CLOCK_SKEW_SECONDS:
        raise TokenError("issued in the future")  # python-jose checks iat's type, not its time
    return claims


# --- keys that others hold ------------------------------------------------------------------

# python-jose has no PSS (PS256): RSA keys verify RS256 only.
ALGORITHMS_BY_KEY = {"EC": ("ES256",), "RSA": ("RS256",)}


def public_verifier(document: str) -> tuple[dict[str, str], Verifier]:
    """A client's or issuer's public key, from PEM or a JWK: (its public JWK, its Verifier).

    Only EC P-256 (ES256) and RSA of 2048 bits or more (RS256). A JWK naming another `alg`
    is refused, as is a private key: it should never have left its owner. A JWK is read by
    app/keys/jwk.py and built here from its numbers, never handed whole to a library; every
    refusal is a ValueError in the exchange's own words.
    """
    text = document.strip()
    if text.startswith("{"):
        try:
            given = read_jwk(text)
            public, alg, kid = _public_from_jwk(given), given.get("alg"), kid_of(given)
        except ValueError as exc:
            raise ValueError(f"not a usable public key: {exc}") from None
        return _verifier_for(public, alg, kid)
    if "PRIVATE KEY" in text:
        raise ValueError("not a usable public key: give the public key only, never the private one")
    try:
        public = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("not a usable public key: neither a PEM public key nor a JWK") from None
    return _verifier_for(public, None, None)


def _public_from_jwk(given: dict[str, Any]) -> Any:
    kty = given.get("kty")
    allowed = ALGORITHMS_BY_KEY.get(kty) if isinstance(kty, str) else None
    if allowed is None:
        raise ValueError("its kty must be EC or RSA")
    if given.get("alg", allowed[0]) not in allowed:
        raise ValueError(f"its alg must be {' or '.join(allowed)} for an {kty} key")
    if kty == "EC" and given.get("crv") != "P-256":
        raise ValueError("its crv must be P-256")
    if kty == "EC":
        x, y = b64url_uint(given.get("x"), "x"), b64url_uint(given.get("y"), "y")
        try:
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            raise ValueError("its x and y are not a point on P-256") from None
    e, n = b64url_uint(given.get("e"), "e"), b64url_uint(given.get("n"), "n")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        raise ValueError("its n and e do not make an RSA public key") from None


def _verifier_for(
    public: Any, alg: str | None, kid: str | None = None
) -> tuple[dict[str, str], Verifier]:
    """Its kid is the one its owner gave, or else its RFC 7638 thumbprint."""
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
        kty = "EC"
    elif isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048:
        kty = "RSA"
    else:
        raise ValueError("not a usable public key: EC P-256 or RSA of 2048 bits or more")
    alg = alg or ALGORITHMS_BY_KEY[kty][0]
    if alg not in ALGORITHMS_BY_KEY[kty]:
        raise ValueError(f"not a usable public key: {alg} is not allowed for {kty}")
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    key = jwk.construct(pem, alg)
    document = {k: str(v) for k, v in key.to_dict().items()}
    members = {k: document[k] for k in ("crv", "e", "kty", "n", "x", "y") if k in document}
    kid = kid or thumbprint(members)
    public_jwk = {**members, "kid": kid, "alg": alg, "use": "sig"}
    return public_jwk, Verifier(kid, alg, key)


def verifier_from_jwk(public_jwk: Mapping[str, str]) -> Verifier:
    """The Verifier of a public JWK that public_verifier() made and the database kept."""
    key = jwk.construct(dict(public_jwk), public_jwk["alg"])
    return Verifier(public_jwk["kid"], public_jwk["alg"], key)


def load_jwks(path: Path) -> dict[str, Verifier]:
    """A trusted issuer's JWKS file, read once: its signing keys by kid. Each key needs a kid."""
    document = json.loads(path.read_text())
    verifiers = {}
    for item in document.get("keys", []):
        if item.get("use", "sig") != "sig" or "kid" not in item:
            continue
        _, verifier = public_verifier(json.dumps({k: v for k, v in item.items() if k != "kid"}))
        verifiers[str(item["kid"])] = Verifier(str(item["kid"]), verifier.alg, verifier.key)
    if not verifiers:
        raise ValueError(f"{path}: no signing keys with a kid")
    return verifiers


# --- encryption to a recipient's key --------------------------------------------------------


def encrypt(keys: RecipientKeys, signed: str, recipient_jwk: Mapping[str, str]) -> str:
    """A signed message (a compact JWS) as a compact JWE to the recipient's key: a nested JWT
    (RFC 7519 section 5.2: alg RSA-OAEP-256, enc A256GCM, cty JWT, the recipient key's kid)."""
    token = jwe.encrypt(
        signed.encode(),
        keys.key(recipient_jwk),
        encryption=CONTENT_ENCRYPTION,
        algorithm=ENCRYPTION_ALGORITHM,
        cty="JWT",
        kid=recipient_jwk["kid"],
    )
    return token.decode()


def is_encrypted(token: str) -> bool:
    """A compact JWE has five dot-separated parts; a compact JWS three."""
    return token.count(".") == 4
