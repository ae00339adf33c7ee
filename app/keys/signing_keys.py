"""The exchange's signing key files: made, retired and read here; no JOSE library needed.

`<keys_dir>` (owner-only) holds one `<kid>.pem` per key ever made (PKCS#8, EC P-256, mode
0600, named by its RFC 7638 thumbprint), `current` naming the key that signs, and one
`<kid>.retired` per key that a rotation replaced, holding when (RFC 3339, UTC). No key is ever
deleted: any message ever sent can still be verified. app/keys/jose.py turns what is read here into
the KeyRing, once, at start-up.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
CURRENT_FILE = "current"
STAMP = "%Y-%m-%dT%H:%M:%SZ"


class KeyFileError(ValueError):
    """A key file that must not be used; the message names the file and why."""


@dataclass(frozen=True)
class StoredKey:
    kid: str
    private: ec.EllipticCurvePrivateKey
    public_jwk: Mapping[str, str]
    retired_at: datetime | None  # None: never retired (the current key, or never made current)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(members: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 over the key type's required members, sorted, without whitespace."""
    canonical = json.dumps(dict(members), sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def public_jwk(private: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = private.public_key().public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    return {**members, "kid": thumbprint(members), "alg": ALGORITHM, "use": "sig"}


def _write_new(path: Path, data: bytes) -> None:
    """Create path owner-only; fails if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def create_once(path: Path, data: bytes) -> None:
    """Create path owner-only with data where no file is, in a folder made owner-only if
    missing; a reader never sees half a file (written aside, then linked), and if another
    process made it first, theirs stays."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    draft = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    _write_new(draft, data)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()


def _replace(path: Path, text: str) -> None:
    """Write text to path atomically: a reader sees the old content or the new, never half."""
    draft = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")  # two writers never share
    _write_new(draft, text.encode())
    draft.replace(path)


def new_signing_key(keys_dir: Path, *, now: datetime | None = None) -> str:
    """Make a key, make it the current one, and return its kid. The key it replaces is marked
    retired now; it stays on disk for good and in the JWKS for the grace period."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    kid = public_jwk(private)["kid"]
    _write_new(keys_dir / f"{kid}.pem", pem)
    previous = current_kid(keys_dir)
    if previous is not None and previous != kid:
        at = (now or datetime.now(UTC)).astimezone(UTC)
        _replace(keys_dir / f"{previous}.retired", at.strftime(STAMP) + "\n")
    _replace(keys_dir / CURRENT_FILE, kid)
    return kid


def current_kid(keys_dir: Path) -> str | None:
    try:
        return (keys_dir / CURRENT_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def _read_private(path: Path) -> bytes:
    """A private key file's bytes, refused (as ssh does) if group or others may use it at all."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"{path}: a private key must be owner-only, but its mode is {mode:04o};"
                " run chmod 600 on it"
            )
        return handle.read()


def _load(path: Path) -> StoredKey:
    data = _read_private(path)
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise KeyFileError(f"{path}: signing keys must be EC P-256")
    public = public_jwk(private)
    if path.stem != public["kid"]:
        raise KeyFileError(f"{path}: named {path.stem!r}, but its thumbprint is {public['kid']!r}")
    return StoredKey(public["kid"], private, public, _retired_at(path.with_suffix(".retired")))


def _retired_at(path: Path) -> datetime | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise KeyFileError(f"{path}: not an RFC 3339 time: {text[:40]!r}") from None
    if at.tzinfo is None:
        raise KeyFileError(f"{path}: the time must carry its offset (e.g. Z)")
    return at.astimezone(UTC)


def read_keys(keys_dir: Path, *, create: bool = True) -> tuple[str, list[StoredKey]]:
    """The current kid and every key in keys_dir. With create, a first key is made when there
    is none. Any unusable file stops the load, naming the file."""
    if current_kid(keys_dir) is None:
        if not create:
            raise FileNotFoundError(f"no signing key in {keys_dir}")
        with contextlib.suppress(FileExistsError):  # another process made it first
            new_signing_key(keys_dir)
    keys = [_load(path) for path in sorted(keys_dir.glob("*.pem"))]
    current = current_kid(keys_dir)
    if current not in {k.kid for k in keys}:
        raise KeyFileError(f"current key {current!r} has no key file in {keys_dir}")
    return str(current), keys
