"""Signed checkpoints of the exchange log: c2sp.org/tlog-checkpoint in a c2sp.org/signed-note.

Pure: no I/O, no database; keys are `cryptography` Ed25519 key objects that the caller loads.

    nps-exchange.example/log              origin
    1042                                  tree size, decimal, no leading zeros
    9wDdQ4Jm0xw0...=                      root hash, standard base64
    time 2026-11-22T09:00:00Z             an extension line (tlog-checkpoint section 'Note text')
                                          holding when the log signed; ours always has it
    <blank line>
    — nps-exchange.example/log <base64(4-byte key ID || 64-byte Ed25519 signature)>

The signature covers the note text up to and including its last newline, not the blank line.
The key ID is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key) (signed-note
'Ed25519 signatures'). A verifier key ("vkey") gives an auditor name, ID and key in one string:
"<name>+<hex key ID>+<base64(0x01 || public key)>".

parse_and_verify follows the signed-note rules: the text is not read until a signature by the
expected key (same name and key ID) has verified; lines from other keys are ignored; a line
from the expected key that fails to verify rejects the whole note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.audit.merkle import HASH_SIZE

ED25519 = b"\x01"  # the signed-note signature type of Ed25519
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
TIME_PREFIX = "time "
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # every ASCII control but the newline
_MAX_SIGNATURES = 16  # the spec asks verifiers to accept at least 16

Reason = Literal["malformed", "unknown_key", "bad_signature", "wrong_origin"]


class CheckpointError(Exception):
    """A note that is not a checkpoint of this log signed by this key; reason says why."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    time: datetime  # UTC, whole seconds


def _public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_key_name(key_name: str) -> None:
    if not key_name or any(c.isspace() or c == "+" for c in key_name) or _CONTROL.search(key_name):
        raise ValueError("a key name is not empty and holds no spaces, '+' or controls")


def key_id(key_name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key under a name."""
    named_key = key_name.encode() + b"\n" + ED25519 + _public_bytes(public_key)
    return hashlib.sha256(named_key).digest()[:4]


def verifier_key(key_name: str, public_key: Ed25519PublicKey) -> str:
    """The signed-note verifier key: one string to give an auditor."""
    _check_key_name(key_name)
    encoded = base64.b64encode(ED25519 + _public_bytes(public_key)).decode()
    return f"{key_name}+{key_id(key_name, public_key).hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """The key name and public key of a verifier key, after checking its key ID."""
    try:
        name, hex_id, encoded = vkey.split("+", 2)  # the base64 may hold "+" too
        _check_key_name(name)
        raw = base64.b64decode(encoded, validate=True)
        if len(raw) != 33 or raw[:1] != ED25519:
            raise ValueError("not an Ed25519 key")
        public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    except (ValueError, binascii.Error) as error:
        raise CheckpointError("malformed", f"not a verifier key: {error}") from error
    if hex_id != key_id(name, public_key).hex():
        raise CheckpointError("malformed", "the verifier key's ID does not match its key")
    return name, public_key


def _time_line(time: datetime) -> str:
    if time.tzinfo is None:
        raise ValueError("a checkpoint's time is timezone-aware")
    return TIME_PREFIX + time.astimezone(UTC).strftime(TIME_FORMAT)


def sign_checkpoint(
    private_key: Ed25519PrivateKey,
    origin: str,
    size: int,
    *,
    root: bytes,
    time: datetime,
    key_name: str | None = None,
) -> str:
    """The signed checkpoint note. The key name is the origin unless given (the spec's SHOULD).

    The time is written in UTC to the whole second (any fraction is dropped).
    """
    key_name = origin if key_name is None else key_name
    _check_key_name(key_name)
    if not origin or "\n" in origin or _CONTROL.search(origin):
        raise ValueError("an origin is one non-empty line")
    if size < 0 or len(root) != HASH_SIZE:
        raise ValueError("a checkpoint holds a tree size >= 0 and a 32-byte root hash")
    text = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n{_time_line(time)}\n"
    public_key = private_key.public_key()
    signature = key_id(key_name, public_key) + private_key.sign(text.encode())
    return f"{text}\n{SIGNATURE_PREFIX}{key_name} {base64.b64encode(signature).decode()}\n"


def _strict_base64(text: str) -> bytes:
    decoded = base64.b64decode(text, validate=True)
    if base64.b64encode(decoded).decode() != text:
        raise ValueError("not canonical base64")
    return decoded


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The note text and its signature lines as (key name, key ID || signature)."""
    if _CONTROL.search(note):
        raise CheckpointError("malformed", "a control character other than newline")
    head, blank, block = note.rpartition("\n\n")
    if not blank or not block.endswith("\n"):
        raise CheckpointError("malformed", "no blank line followed by signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError("malformed", "too many signature lines")
    signatures = []
    for line in lines:
        name, space, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        try:
            if not line.startswith(SIGNATURE_PREFIX) or not space:
                raise ValueError("not '— <key name> <signature>'")
            _check_key_name(name)
            signature = _strict_base64(encoded)
            if len(signature) < 5:
                raise ValueError("a signature is a key ID and at least one byte")
        except (ValueError, binascii.Error) as error:
            raise CheckpointError("malformed", f"a signature line: {error}") from error
        signatures.append((name, signature))
    return head + "\n", signatures


def signed_by(note: str) -> list[tuple[str, str]]:
    """The key name and hex key ID of each signature line in a note, nothing verified: to say
    which key signed a checkpoint that a given key does not verify."""
    return [(name, signature[:4].hex()) for name, signature in _split_note(note)[1]]


def _parse_body(text: str, origin: str) -> Checkpoint:
    lines = text[:-1].split("\n")
    if len(lines) != 4:
        raise CheckpointError("malformed", "not origin, size, root and time lines")
    note_origin, size, root, time = lines
    if note_origin != origin:
        raise CheckpointError("wrong_origin", "a checkpoint of another log")
    if not _TREE_SIZE.fullmatch(size):
        raise CheckpointError("malformed", "the tree size is not a decimal without leading zeros")
    try:
        root_hash = _strict_base64(root)
    except (ValueError, binascii.Error) as error:
        raise CheckpointError("malformed", "the root hash is not base64") from error
    if len(root_hash) != HASH_SIZE:
        raise CheckpointError("malformed", f"the root hash is not {HASH_SIZE} bytes")
    stamp = time.removeprefix(TIME_PREFIX)
    if not time.startswith(TIME_PREFIX) or not _TIME.fullmatch(stamp):
        raise CheckpointError("malformed", "no 'time YYYY-MM-DDTHH:MM:SSZ' line")
    try:
        signed_at = datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as error:
        raise CheckpointError("malformed", "the time is not a date and time") from error
    return Checkpoint(size=int(size), root=root_hash, time=signed_at)


def parse_and_verify(
    note: str, public_key: Ed25519PublicKey, key_name: str, *, origin: str
) -> Checkpoint:
    """The checkpoint in note, once a signature by (key_name, public_key) verifies over it."""
    text, signatures = _split_note(note)
    expected_id = key_id(key_name, public_key)
    ours = [sig[4:] for name, sig in signatures if name == key_name and sig[:4] == expected_id]
    if not ours:
        raise CheckpointError("unknown_key", f"no signature by {key_name} with this key")
    for signature in ours:
        try:
            public_key.verify(signature, text.encode())
        except InvalidSignature as error:
            raise CheckpointError("bad_signature", "the signature does not verify") from error
    return _parse_body(text, origin)
