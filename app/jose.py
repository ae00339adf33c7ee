"""The one module that touches python-jose: the exchange's keys, signing and verification.

Algorithms are pinned (ES256 only), keys are chosen by `kid` from the exchange's own key ring,
`typ` is checked, and token sizes are capped before anything is parsed. Keys live in
`<data_dir>/keys` as owner-only PEM files named by their RFC 7638 thumbprint; they are read once
at start-up into a KeyRing that is then passed to whoever signs or verifies.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jws, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

ALGORITHM = "ES256"
MAX_TOKEN_BYTES = 256 * 1024
CLOCK_SKEW_SECONDS = 60


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


@dataclass(frozen=True)
class KeyRing:
    current: SigningKey
    by_kid: Mapping[str, SigningKey]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(k.public_jwk) for k in self.by_kid.values()]}

    @cached_property
    def verifiers(self) -> dict[str, Verifier]:
        return {kid: Verifier(kid, ALGORITHM, k.verifier) for kid, k in self.by_kid.items()}


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_jwk(private: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = private.public_key().public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url_uint(numbers.x),
        "y": _b64url_uint(numbers.y),
    }
    # RFC 7638: SHA-256 over the required members, lexicographic order, no whitespace.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def _load_key(pem: bytes) -> SigningKey:
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise ValueError("signing keys must be EC P-256")
    public = _public_jwk(private)
    key = jwk.construct(pem.decode(), ALGORITHM)
    return SigningKey(kid=public["kid"], key=key, verifier=key.public_key(), public_jwk=public)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def new_signing_key(keys_dir: Path) -> str:
    """Create a key, make it the current one, and return its kid. Older keys stay published."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    kid = _public_jwk(private)["kid"]
    _write_private(keys_dir / f"{kid}.pem", pem)
    pointer = keys_dir / f"current.{kid}.tmp"  # unique: two processes never share it
    pointer.write_text(kid)
    pointer.replace(keys_dir / "current")
    return kid


def load_keyring(keys_dir: Path, *, create: bool = True) -> KeyRing:
    """Read every key in keys_dir once. With create, a first key is made when there is none."""
    current_file = keys_dir / "current"
    if not current_file.exists():
        if not create:
            raise FileNotFoundError(f"no signing key in {keys_dir}")
        with contextlib.suppress(FileExistsError):  # another process made it first
            new_signing_key(keys_dir)
    by_kid = {}
    for path in sorted(keys_dir.glob("*.pem")):
        key = _load_key(path.read_bytes())
        by_kid[key.kid] = key
    current_kid = current_file.read_text().strip()
    if current_kid not in by_kid:
        raise ValueError(f"current key {current_kid!r} has no key file in {keys_dir}")
    return KeyRing(current=by_kid[current_kid], by_kid=by_kid)


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
                "require_exp": True,
                "require_iat": True,
                **{f"require_{claim}": True for claim in require if claim in ("sub", "jti")},
            },
        )
    except (JOSEError, *HOSTILE_INPUT) as exc:
        raise TokenError("invalid token") from exc
    if type(claims["exp"]) is not int or type(claims["iat"]) is not int:  # not bool, str, float
        raise TokenError("exp and iat must be whole seconds")
    if claims["iat"] > time.time() + CLOCK_SKEW_SECONDS:
        raise TokenError("issued in the future")  # python-jose checks iat's type, not its time
    if max_lifetime is not None and claims["exp"] - claims["iat"] > max_lifetime:
        raise TokenError("token lives too long")
    return claims


# --- keys that others hold ------------------------------------------------------------------

# python-jose has no PSS (PS256): RSA keys verify RS256 only.
ALGORITHMS_BY_KEY = {"EC": ("ES256",), "RSA": ("RS256",)}


def public_verifier(document: str) -> tuple[dict[str, str], Verifier]:
    """A client's or issuer's public key, from PEM or a JWK: (its public JWK, its Verifier).

    Only EC P-256 (ES256) and RSA of 2048 bits or more (RS256). A JWK naming another `alg`
    is refused, as is a private key: it should never have left its owner.
    """
    text = document.strip()
    try:
        if text.startswith("{"):
            given = json.loads(text)
            if not isinstance(given, dict) or any(p in given for p in ("d", "p", "q", "k")):
                raise ValueError("give the public key only, never the private one")
            allowed = ALGORITHMS_BY_KEY.get(str(given.get("kty")), ())
            if given.get("alg", allowed[0] if allowed else None) not in allowed:
                raise ValueError(f"{given.get('alg')} is not allowed for {given.get('kty')}")
            public = serialization.load_pem_public_key(
                jwk.construct(given, given.get("alg") or _default_alg(given)).to_pem()
            )
            alg, kid = given.get("alg"), given.get("kid")
        else:
            if "PRIVATE KEY" in text:
                raise ValueError("give the public key only, never the private one")
            public = serialization.load_pem_public_key(text.encode())
            alg, kid = None, None
    except (ValueError, TypeError, JOSEError) as exc:
        raise ValueError(f"not a usable public key: {exc}") from None
    return _verifier_for(public, alg, kid if isinstance(kid, str) and kid else None)


def _default_alg(jwk_document: dict[str, Any]) -> str:
    return ALGORITHMS_BY_KEY.get(str(jwk_document.get("kty")), ("none",))[0]


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
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    kid = kid or base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
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
