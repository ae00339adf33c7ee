"""Signed checkpoints (app/audit/checkpoint.py): c2sp.org/tlog-checkpoint in a
c2sp.org/signed-note."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    key_id,
    parse_and_verify,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
)

ORIGIN = "nps-exchange.example/log"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ROOT = hashlib.sha256(b"a root").digest()
AT = datetime(2026, 11, 22, 9, 30, 15, tzinfo=UTC)
NOTE = sign_checkpoint(KEY, ORIGIN, 1042, root=ROOT, time=AT)
DASH = "\u2014"


def verify(note: str, key: Ed25519PrivateKey = KEY, name: str = ORIGIN) -> Checkpoint:
    return parse_and_verify(note, key.public_key(), name, origin=ORIGIN)


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_the_note_is_laid_out_as_the_specs_say() -> None:
    text, signature_line = NOTE.split("\n\n")
    assert text.split("\n") == [
        ORIGIN,
        "1042",
        base64.b64encode(ROOT).decode(),
        "time 2026-11-22T09:30:15Z",
    ]
    assert signature_line.endswith("\n") and signature_line.count("\n") == 1
    dash, name, encoded = signature_line[:-1].split(" ")
    assert (dash, name) == (DASH, ORIGIN)
    signature = base64.b64decode(encoded, validate=True)
    assert len(signature) == 4 + 64
    # key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4], computed here by hand
    assert signature[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw(KEY)).digest()[:4]
    KEY.public_key().verify(signature[4:], (text + "\n").encode())


def test_round_trip() -> None:
    assert verify(NOTE) == Checkpoint(size=1042, root=ROOT, time=AT)
    empty = sign_checkpoint(KEY, ORIGIN, 0, root=hashlib.sha256(b"").digest(), time=AT)
    assert verify(empty).size == 0


def test_time_is_written_in_utc_to_the_second() -> None:
    paris = timezone(timedelta(hours=1))
    note = sign_checkpoint(
        KEY, ORIGIN, 1, root=ROOT, time=datetime(2026, 11, 22, 10, 30, 15, 999, paris)
    )
    assert "time 2026-11-22T09:30:15Z\n" in note
    assert verify(note).time == AT
    with pytest.raises(ValueError):
        sign_checkpoint(KEY, ORIGIN, 1, root=ROOT, time=datetime(2026, 11, 22, 9, 30))  # naive


def test_a_key_name_other_than_the_origin() -> None:
    note = sign_checkpoint(KEY, ORIGIN, 5, root=ROOT, time=AT, key_name="exchange-2026")
    assert f"\n\n{DASH} exchange-2026 " in note
    assert parse_and_verify(note, KEY.public_key(), "exchange-2026", origin=ORIGIN).size == 5


@pytest.mark.parametrize(
    ("origin", "size", "root", "key_name"),
    [
        ("", 1, ROOT, "name"),
        ("two\nlines", 1, ROOT, "name"),
        (ORIGIN, -1, ROOT, None),
        (ORIGIN, 1, ROOT[:31], None),
        (ORIGIN, 1, ROOT, "with space"),
        (ORIGIN, 1, ROOT, "with+plus"),
        (ORIGIN, 1, ROOT, ""),
    ],
)
def test_what_cannot_be_signed(origin: str, size: int, root: bytes, key_name: str | None) -> None:
    with pytest.raises(ValueError):
        sign_checkpoint(KEY, origin, size, root=root, time=AT, key_name=key_name)


# The signed-note reference (Go's golang.org/x/mod/sumdb/note) and its test key.
PETER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)


def test_key_id_and_verifier_key_match_the_reference_implementation() -> None:
    peter = Ed25519PrivateKey.from_private_bytes(PETER_SEED)
    assert key_id("PeterNeumann", peter.public_key()).hex() == "c74f20a3"
    assert verifier_key("PeterNeumann", peter.public_key()) == PETER_VKEY
    name, public_key = parse_verifier_key(PETER_VKEY)
    assert name == "PeterNeumann" and raw(peter) == public_key.public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    signature = base64.b64decode(PETER_SIGNATURE)
    assert signature[:4].hex() == "c74f20a3"
    public_key.verify(signature[4:], PETER_TEXT.encode())  # signed: the text, final newline in


def test_verifier_keys_read_back_though_their_base64_holds_plus_signs() -> None:
    keys = [Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32) for seed in range(40)]
    vkeys = [verifier_key(ORIGIN, key.public_key()) for key in keys]
    assert any("+" in vkey.split("+", 2)[2] for vkey in vkeys)  # the case this is about
    for key, vkey in zip(keys, vkeys, strict=True):
        name, public_key = parse_verifier_key(vkey)
        assert name == ORIGIN and raw(key) == public_key.public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )


@pytest.mark.parametrize(
    "vkey",
    [
        PETER_VKEY.replace("c74f20a3", "c74f20a4"),  # an ID that is not the key's
        PETER_VKEY.replace("PeterNeumann", "PeterNeuman"),  # nor the name's
        PETER_VKEY.replace("+AR", "+Ah"),  # not Ed25519
        PETER_VKEY + "+more",
        "PeterNeumann+c74f20a3+not base64",
        PETER_VKEY[:-4],  # a short key
    ],
)
def test_malformed_verifier_keys(vkey: str) -> None:
    with pytest.raises(CheckpointError) as refused:
        parse_verifier_key(vkey)
    assert refused.value.reason == "malformed"


# ---- tampering ------------------------------------------------------------------------------

TEXT, SIGNATURE_BLOCK = NOTE.split("\n\n")
ENCODED_SIGNATURE = SIGNATURE_BLOCK.split(" ")[2].strip()
SIGNATURE = base64.b64decode(ENCODED_SIGNATURE)


def with_signature(signature: bytes, name: str = ORIGIN) -> str:
    return f"{TEXT}\n\n{DASH} {name} {base64.b64encode(signature).decode()}\n"


def flip_last(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 1])


TAMPERED: list[tuple[str, str, str]] = [
    # (what, note, reason)
    ("size", NOTE.replace("\n1042\n", "\n1043\n"), "bad_signature"),
    ("smaller size", NOTE.replace("\n1042\n", "\n104\n"), "bad_signature"),
    (
        "root",
        NOTE.replace(base64.b64encode(ROOT).decode(), base64.b64encode(flip_last(ROOT)).decode()),
        "bad_signature",
    ),
    ("origin", NOTE.replace(ORIGIN + "\n", "nps-exchange.example/other\n", 1), "bad_signature"),
    ("time line", NOTE.replace("09:30:15Z", "09:30:16Z"), "bad_signature"),
    ("time line removed", NOTE.replace("time 2026-11-22T09:30:15Z\n", ""), "bad_signature"),
    ("a line added", NOTE.replace("\n\n", "\nextra 1\n\n"), "bad_signature"),
    ("signature bytes", with_signature(flip_last(SIGNATURE)), "bad_signature"),
    ("signature zeroed", with_signature(SIGNATURE[:4] + bytes(64)), "bad_signature"),
    ("signature truncated", with_signature(SIGNATURE[:-1]), "bad_signature"),
    ("key name", with_signature(SIGNATURE, "nps-exchange.example/other"), "unknown_key"),
    ("key ID", with_signature(flip_last(SIGNATURE[:4]) + SIGNATURE[4:]), "unknown_key"),
]


@pytest.mark.parametrize(
    ("note", "reason"), [t[1:] for t in TAMPERED], ids=[t[0] for t in TAMPERED]
)
def test_every_tampering_is_refused(note: str, reason: str) -> None:
    assert note != NOTE
    with pytest.raises(CheckpointError) as refused:
        verify(note)
    assert refused.value.reason == reason


def test_a_note_signed_by_another_key() -> None:
    forged = sign_checkpoint(OTHER_KEY, ORIGIN, 1042, root=ROOT, time=AT)
    with pytest.raises(CheckpointError) as refused:
        verify(forged)
    assert refused.value.reason == "unknown_key"
    # ... even when the forger claims our key's ID: same name and ID, so it must verify, and fails
    forged_signature = base64.b64decode(forged.split(" ")[-1])
    with pytest.raises(CheckpointError) as refused:
        verify(with_signature(SIGNATURE[:4] + forged_signature[4:]))
    assert refused.value.reason == "bad_signature"


def test_a_note_verified_with_the_wrong_key() -> None:
    with pytest.raises(CheckpointError) as refused:
        verify(NOTE, key=OTHER_KEY)
    assert refused.value.reason == "unknown_key"


def test_a_checkpoint_of_another_log() -> None:
    other = sign_checkpoint(
        KEY, "nps-exchange.example/other", 1042, root=ROOT, time=AT, key_name=ORIGIN
    )
    with pytest.raises(CheckpointError) as refused:
        verify(other)
    assert refused.value.reason == "wrong_origin"


def test_signatures_by_unknown_keys_are_ignored() -> None:
    witness = sign_checkpoint(OTHER_KEY, ORIGIN, 1042, root=ROOT, time=AT, key_name="witness")
    witness_line = witness.split("\n\n")[1]
    cosigned = NOTE + witness_line
    assert verify(cosigned).size == 1042
    assert verify(f"{TEXT}\n\n{witness_line}{SIGNATURE_BLOCK}").size == 1042
    # but a bad signature line by our key rejects the note, whatever else signed it
    with pytest.raises(CheckpointError) as refused:
        verify(cosigned + with_signature(flip_last(SIGNATURE)).split("\n\n")[1])
    assert refused.value.reason == "bad_signature"


def signed(text: str) -> str:
    """A note whose text is signed correctly, to show that the body itself is refused."""
    signature = key_id(ORIGIN, KEY.public_key()) + KEY.sign(text.encode())
    return f"{text}\n{DASH} {ORIGIN} {base64.b64encode(signature).decode()}\n"


ROOT64 = base64.b64encode(ROOT).decode()
SHORT_ROOT64 = base64.b64encode(ROOT[:31]).decode()
MALFORMED: list[tuple[str, str]] = [
    ("no blank line", NOTE.replace("\n\n", "\n")),
    ("no signature line", TEXT + "\n\n"),
    ("nothing after the signature line's newline is allowed", NOTE + "\n"),
    ("no final newline", NOTE[:-1]),
    ("a hyphen for the em dash", NOTE.replace(DASH, "-")),
    ("two spaces after the dash", NOTE.replace(f"{DASH} ", f"{DASH}  ")),
    (
        "two spaces before the signature",
        NOTE.replace(f" {ENCODED_SIGNATURE}", f"  {ENCODED_SIGNATURE}"),
    ),
    ("a space after the signature", NOTE[:-1] + " \n"),
    ("a carriage return", NOTE.replace("\n", "\r\n")),
    ("a tab", NOTE.replace("1042", "1042\t")),
    ("signature not base64", NOTE.replace(ENCODED_SIGNATURE, ENCODED_SIGNATURE[:-2] + "!!")),
    ("signature unpadded", NOTE.replace(ENCODED_SIGNATURE, ENCODED_SIGNATURE.rstrip("="))),
    ("signature too short", with_signature(SIGNATURE[:4])),
    ("non-decimal size", signed(f"{ORIGIN}\n0x412\n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("negative size", signed(f"{ORIGIN}\n-1\n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("leading zero in size", signed(f"{ORIGIN}\n01042\n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("size with a plus", signed(f"{ORIGIN}\n+1042\n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("non-ASCII digits", signed(f"{ORIGIN}\n\u0661\u0662\n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("size with a space", signed(f"{ORIGIN}\n1042 \n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("empty size", signed(f"{ORIGIN}\n\n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("root not base64", signed(f"{ORIGIN}\n1042\n{ROOT.hex()}\ntime 2026-11-22T09:30:15Z\n")),
    ("root of 31 bytes", signed(f"{ORIGIN}\n1042\n{SHORT_ROOT64}\ntime 2026-11-22T09:30:15Z\n")),
    ("no time line", signed(f"{ORIGIN}\n1042\n{ROOT64}\n")),
    ("time not UTC", signed(f"{ORIGIN}\n1042\n{ROOT64}\ntime 2026-11-22T09:30:15+01:00\n")),
    ("time not a date", signed(f"{ORIGIN}\n1042\n{ROOT64}\ntime 2026-13-22T09:30:15Z\n")),
    ("time without its name", signed(f"{ORIGIN}\n1042\n{ROOT64}\n2026-11-22T09:30:15Z\n")),
    (
        "an unknown extension line",
        signed(f"{ORIGIN}\n1042\n{ROOT64}\ntime 2026-11-22T09:30:15Z\nmore\n"),
    ),
    ("too many signature lines", NOTE + (SIGNATURE_BLOCK * 16)),
]


@pytest.mark.parametrize("note", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(CheckpointError) as refused:
        verify(note)
    assert refused.value.reason == "malformed"


def test_the_signing_helper_above_makes_good_notes() -> None:
    # So the body refusals above fail for their body, not for their signature.
    good = signed(f"{ORIGIN}\n1042\n{ROOT64}\ntime 2026-11-22T09:30:15Z\n")
    assert good == NOTE
    assert verify(good).size == 1042


ANY_REFUSAL: list[Callable[[], object]] = [
    lambda: parse_and_verify(NOTE, OTHER_KEY.public_key(), ORIGIN, origin=ORIGIN),
    lambda: parse_and_verify(NOTE, KEY.public_key(), ORIGIN, origin="another/log"),
]


@pytest.mark.parametrize("refusal", ANY_REFUSAL)
def test_a_refusal_is_a_checkpoint_error_and_names_why(refusal: Callable[[], object]) -> None:
    with pytest.raises(CheckpointError) as refused:
        refusal()
    assert str(refused.value).startswith(refused.value.reason + ": ")
