"""Encryption at rest: personal and health data are sealed with AES-256-GCM before storage.

Each sealed value is stored beside the id of the data key that sealed it, so keys can be rotated:
a new key seals from then on, and every older key stays to open what it sealed. The value's
place (its table, column and row) is bound in as associated data, so a sealed value copied into
another row does not open there.

Data keys live in `<data_keys_dir>/<id>.key` (owner-only, 32 random bytes, base64) with a
`current` file naming the key that seals, and a `pseudonym` key that turns a NOMS number into a
keyed hash (person_ref) so that a person's rows can be found without being named; they are read
once at start-up into DataKeys.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
TAG_BYTES = 16
PSEUDONYM_FILE = "pseudonym"


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
    pseudonym_key: bytes | None = None  # for person_ref: never rotated, or refs stop matching

    def person_ref(self, noms_number: str) -> str:
        """A keyed hash of a NOMS number: finds a person's rows without naming them."""
        if not self.pseudonym_key:
            raise SealError("no pseudonym key")
        digest = hmac.new(self.pseudonym_key, noms_number.strip().upper().encode(), "sha256")
        return digest.hexdigest()

    def idempotency_ref(self, key: str) -> str:
        """A keyed hash of an Idempotency-Key, which a client may build from personal data."""
        if not self.pseudonym_key:
            raise SealError("no pseudonym key")
        return hmac.new(
            self.pseudonym_key, b"idempotency-key\0" + key.encode(), "sha256"
        ).hexdigest()

    def body_ref(self, document: str, canonical: str) -> str:
        """A keyed hash of a small document's canonical body (a care update): a plain hash of a
        few codes and days is read back by trying them all."""
        if not self.pseudonym_key:
            raise SealError("no pseudonym key")
        message = document.encode() + b"\0" + canonical.encode()
        return hmac.new(self.pseudonym_key, message, "sha256").hexdigest()

    def seal(self, plaintext: bytes, place: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe far beyond our volumes
        blob = nonce + self.by_id[self.current].encrypt(nonce, plaintext, place.encode())
        return Sealed(self.current, blob)

    def seal_body(
        self, body: Mapping[str, object], table: str, row_id: object
    ) -> tuple[str, Sealed]:
        """A document's canonical text (its JSON, keys sorted, no spaces) and that text sealed
        for `table`'s body_sealed column of row `row_id`: what a notice or an update stores."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return canonical, self.seal(canonical.encode(), place(table, "body_sealed", row_id))

    def open(self, sealed: Sealed, place: str) -> bytes:
        key = self.by_id.get(sealed.key_id)
        if key is None:
            raise SealError(f"no data key {sealed.key_id!r}")
        if len(sealed.blob) < NONCE_BYTES + TAG_BYTES:
            raise SealError("a sealed value is too short to be one")
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
    return DataKeys(current, by_id, _pseudonym_key(keys_dir))


def _pseudonym_key(keys_dir: Path) -> bytes:
    path = keys_dir / PSEUDONYM_FILE
    if not path.exists():  # made once, whole, by whichever process links it first
        draft = keys_dir / f"{PSEUDONYM_FILE}.{secrets.token_hex(8)}.tmp"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    material = base64.b64decode(path.read_bytes(), validate=True)
    if len(material) != 32:
        raise ValueError(f"{PSEUDONYM_FILE} is not 256 bits")
    return material
