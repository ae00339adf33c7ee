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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jws, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

ALGORITHM = "ES256"
MAX_TOKEN_BYTES = 256 * 1024
CLOCK_SKEW_SECONDS = 60


class TokenError(Exception):
    """A token or signed message that must not be trusted. The message names why, not the data."""


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


def verify_jwt(
    ring: KeyRing,
    token: str,
    *,
    typ: str,
    audience: str,
    issuer: str,
) -> dict[str, Any]:
    """Verify a JWT made by this exchange; return its claims or raise TokenError."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("token too large")
    try:
        header = jwt.get_unverified_header(token)
    except JOSEError as exc:
        raise TokenError("malformed token") from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError("algorithm not allowed")
    if header.get("typ") != typ:
        raise TokenError("wrong token type")
    key = ring.by_kid.get(str(header.get("kid")))
    if key is None:
        raise TokenError("unknown key")
    try:
        return jwt.decode(
            token,
            key.verifier,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "leeway": CLOCK_SKEW_SECONDS,
                # python-jose skips the audience check when `aud` is absent unless required.
                "require_aud": True,
                "require_iss": True,
                "require_exp": True,
                "require_iat": True,
            },
        )
    except JOSEError as exc:
        raise TokenError("invalid token") from exc
