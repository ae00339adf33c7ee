"""Encryption at rest: personal and health data are sealed with AES-256-GCM before storage.

Each sealed value is stored beside the id of the data key that sealed it, so keys can be rotated:
a new key seals from then on, and every older key stays to open what it sealed. The value's
place (its table, column and row) is bound in as associated data, so a sealed value copied into
another row does not open there.

Data keys live in `<data_keys_dir>/<id>.key` (owner-only, 32 random bytes, base64) with a
`current` file naming the key that seals; they are read once at start-up into DataKeys.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that cannot be opened: unknown key, or altered, or moved."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes  # nonce, then ciphertext and tag


@dataclass(frozen=True)
class DataKeys:
    current: str
    by_id: Mapping[str, AESGCM]

    def seal(self, plaintext: bytes, place: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe far beyond our volumes
        blob = nonce + self.by_id[self.current].encrypt(nonce, plaintext, place.encode())
        return Sealed(self.current, blob)

    def open(self, sealed: Sealed, place: str) -> bytes:
        key = self.by_id.get(sealed.key_id)
        if key is None:
            raise SealError(f"no data key {sealed.key_id!r}")
        nonce, ciphertext = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
        try:
            return key.decrypt(nonce, ciphertext, place.encode())
        except InvalidTag:
            raise SealError("a sealed value failed its integrity check") from None


def place(table: str, column: str, row_id: object) -> str:
    """The associated data that ties a sealed value to where it is stored."""
    return f"{table}.{column}:{row_id}"


def new_data_key(keys_dir: Path) -> str:
    """Create a data key, make it the one that seals from now on, and return its id."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_id = f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    material = base64.b64encode(AESGCM.generate_key(bit_length=256))
    fd = os.open(keys_dir / f"{key_id}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(material)
    pointer = keys_dir / f"current.{key_id}.tmp"  # unique: two processes never share it
    pointer.write_text(key_id)
    pointer.replace(keys_dir / "current")
    return key_id


def load_data_keys(keys_dir: Path, *, create: bool = True) -> DataKeys:
    """Read every data key once. With create, a first key is made when there is none."""
    current_file = keys_dir / "current"
    if not current_file.exists():
        if not create:
            raise FileNotFoundError(f"no data key in {keys_dir}")
        with contextlib.suppress(FileExistsError):
            new_data_key(keys_dir)
    by_id = {}
    for path in sorted(keys_dir.glob("*.key")):
        material = base64.b64decode(path.read_bytes(), validate=True)
        if len(material) != 32:
            raise ValueError(f"data key {path.name} is not 256 bits")
        by_id[path.stem] = AESGCM(material)
    current = current_file.read_text().strip()
    if current not in by_id:
        raise ValueError(f"current data key {current!r} has no key file in {keys_dir}")
    return DataKeys(current, by_id)
