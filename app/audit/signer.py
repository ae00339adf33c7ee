"""The exchange log's checkpoint key: one Ed25519 key in `<data_dir>/log-key/ed25519.pem`.

Made (PKCS#8, owner-only) the first time it is missing, read once at start-up, and refused, as
signing keys are, when group or others may use the file. Never rotated here: an auditor pins
its verifier key, so a new key is a new log as far as they can tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.checkpoint import key_id, sign_checkpoint, verifier_key
from app.keys.signing_keys import KeyFileError, _read_private, create_once

KEY_FILE = "ed25519.pem"


class Place(Protocol):
    """What names the log and where its key is kept: the settings' fields of those names."""

    data_dir: Path
    issuer: str
    log_origin: str | None


@dataclass(frozen=True)
class LogSigner:
    private_key: Ed25519PrivateKey
    origin: str  # the checkpoint's origin line, and the key's name

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.origin, self.private_key.public_key())

    @property
    def key_id(self) -> str:
        """The 4-byte key ID, in hex, that the verifier key and each signature line carry."""
        return key_id(self.origin, self.private_key.public_key()).hex()

    def sign(self, size: int, root: bytes, time: datetime) -> str:
        return sign_checkpoint(self.private_key, self.origin, size, root=root, time=time)


def origin(settings: Place) -> str:
    """EXCHANGE_LOG_ORIGIN, or the issuer's host followed by /log."""
    return settings.log_origin or f"{urlsplit(settings.issuer).hostname}/log"


def _create(path: Path) -> None:
    """Write a new key where none is (another process's, if it made one first, stays)."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    create_once(path, pem)


def key_path(settings: Place) -> Path:
    return settings.data_dir / "log-key" / KEY_FILE


def load_log_signer(settings: Place, *, create: bool = True) -> LogSigner:
    """The log's key, made first if missing; with create=False a missing key is a
    KeyFileError, and nothing is written."""
    path = key_path(settings)
    if not path.exists():
        if not create:
            raise KeyFileError(f"{path}: no log key here (the exchange makes it on first start)")
        _create(path)
    data = _read_private(path)  # refuses a file group or others may use
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: the log's key must be Ed25519")
    return LogSigner(private, origin(settings))
