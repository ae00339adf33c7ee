"""Sealing at rest (app/keys/sealing.py), pure: AES-256-GCM with the value's place as associated
data.

The format is checked with cryptography's low-level Cipher API, not the AESGCM class the module
uses, so a sealed value is known to be standard AES-256-GCM that any implementation can open.
"""

from __future__ import annotations

import base64
import stat
import uuid
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from app.keys.sealing import (
    NONCE_BYTES,
    DataKeys,
    Sealed,
    SealError,
    load_data_keys,
    new_data_key,
    place,
)

TAG_BYTES = 16
ROW = uuid.UUID("6f1c1a52-1d1e-4a8c-9a53-0f7a3c1b2d4e")
OTHER_ROW = uuid.UUID("0b5e8f0e-7a3d-4c61-8a0f-2f9d1c4e5a6b")
HERE = place("message", "jws_sealed", ROW)
SECRET = b'{"noms_number":"A1234BC","concerns":"two children"}'


def in_memory(*key_ids: str) -> DataKeys:
    """Keys without a filesystem: the first seals, all open."""
    return DataKeys(key_ids[0], {k: AESGCM(AESGCM.generate_key(bit_length=256)) for k in key_ids})


def material(keys_dir: Path, key_id: str) -> bytes:
    return base64.b64decode((keys_dir / f"{key_id}.key").read_bytes())


def independently_opened(key: bytes, blob: bytes, associated: str) -> bytes:
    nonce, ciphertext, tag = blob[:12], blob[12:-TAG_BYTES], blob[-TAG_BYTES:]
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(associated.encode())
    return decryptor.update(ciphertext) + decryptor.finalize()


# --- sealing and opening ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=4096), where=st.text(max_size=80))
def test_whatever_is_sealed_opens_to_the_same_bytes_in_its_place(plaintext, where):
    keys = in_memory("k1")
    sealed = keys.seal(plaintext, where)
    assert sealed.key_id == "k1"
    assert len(sealed.blob) == NONCE_BYTES + len(plaintext) + TAG_BYTES
    assert keys.open(sealed, where) == plaintext
    if len(plaintext) >= 8:
        assert plaintext not in sealed.blob


def test_a_sealed_value_is_standard_aes_256_gcm_with_the_place_as_associated_data(tmp_path):
    keys_dir = tmp_path / "data-keys"
    keys = load_data_keys(keys_dir)
    sealed = keys.seal(SECRET, HERE)

    key = material(keys_dir, sealed.key_id)
    assert len(key) == 32  # AES-256
    assert independently_opened(key, sealed.blob, HERE) == SECRET
    with pytest.raises(InvalidTag):
        independently_opened(key, sealed.blob, place("message", "jws_sealed", OTHER_ROW))


def test_every_seal_takes_a_fresh_random_nonce():
    keys = in_memory("k1")
    blobs = [keys.seal(SECRET, HERE).blob for _ in range(50)]
    nonces = {b[:NONCE_BYTES] for b in blobs}
    assert len(nonces) == 50, "a repeated nonce under one AES-GCM key leaks both plaintexts"
    assert len(set(blobs)) == 50
    assert {keys.open(Sealed("k1", b), HERE) for b in blobs} == {SECRET}


@pytest.mark.parametrize(
    "elsewhere",
    [
        place("message", "jws_sealed", OTHER_ROW),  # moved to another row
        place("message", "jws_key_id", ROW),  # another column
        place("release_notice", "jws_sealed", ROW),  # another table
        place("release_notice", "body_sealed", ROW),
        "",
    ],
)
def test_a_value_moved_to_another_place_does_not_open(elsewhere):
    keys = in_memory("k1")
    sealed = keys.seal(SECRET, HERE)
    with pytest.raises(SealError):
        keys.open(sealed, elsewhere)


def test_the_place_names_table_column_and_row():
    # Stored values are bound to this exact text: changing it would make every one unopenable.
    assert place("message", "jws_sealed", ROW) == f"message.jws_sealed:{ROW}"
    assert place("release_notice", "body_sealed", ROW) != place("message", "jws_sealed", ROW)


def test_an_unknown_key_id_is_a_seal_error():
    sealed = in_memory("k1").seal(SECRET, HERE)
    with pytest.raises(SealError, match="no data key 'gone'"):
        in_memory("k1").open(Sealed("gone", sealed.blob), HERE)


def test_a_value_labelled_with_another_existing_key_does_not_open():
    keys = in_memory("k1", "k2")
    sealed = keys.seal(SECRET, HERE)
    with pytest.raises(SealError):
        keys.open(Sealed("k2", sealed.blob), HERE)


def flipped(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


@pytest.mark.parametrize(
    ("what", "tamper"),
    [
        ("a bit of the nonce", lambda b: flipped(b, 0)),
        ("a bit of the ciphertext", lambda b: flipped(b, NONCE_BYTES + 3)),
        ("a bit of the tag", lambda b: flipped(b, len(b) - 1)),
        ("a byte appended", lambda b: b + b"\x00"),
        ("the last byte cut", lambda b: b[:-1]),
        ("the tag cut off", lambda b: b[:-TAG_BYTES]),
        ("only the nonce left", lambda b: b[:NONCE_BYTES]),
        ("eight bytes left", lambda b: b[:8]),
        ("the nonce replaced", lambda b: bytes(NONCE_BYTES) + b[NONCE_BYTES:]),
    ],
)
def test_a_tampered_blob_is_a_seal_error(what, tamper):
    keys = in_memory("k1")
    sealed = keys.seal(SECRET, HERE)
    with pytest.raises(SealError):
        keys.open(Sealed("k1", tamper(sealed.blob)), HERE)


@pytest.mark.parametrize("length", [0, 1, 7])
def test_a_blob_cut_shorter_than_a_nonce_is_a_seal_error(length):
    keys = in_memory("k1")
    sealed = keys.seal(SECRET, HERE)
    with pytest.raises(SealError):
        keys.open(Sealed("k1", sealed.blob[:length]), HERE)


# --- data key files -----------------------------------------------------------------------------


def test_a_new_data_key_is_owner_only_and_becomes_current(tmp_path):
    keys_dir = tmp_path / "var" / "data-keys"
    key_id = new_data_key(keys_dir)

    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    key_file = keys_dir / f"{key_id}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(base64.b64decode(key_file.read_bytes(), validate=True)) == 32
    assert (keys_dir / "current").read_text().strip() == key_id
    assert sorted(p.name for p in keys_dir.iterdir()) == sorted(["current", f"{key_id}.key"])
    assert load_data_keys(keys_dir, create=False).current == key_id


def test_loading_makes_a_first_key_once_and_then_reads_it(tmp_path):
    keys_dir = tmp_path / "data-keys"
    with pytest.raises(FileNotFoundError):
        load_data_keys(keys_dir, create=False)

    first = load_data_keys(keys_dir)
    sealed = first.seal(SECRET, HERE)
    again = load_data_keys(keys_dir)
    assert again.current == first.current
    assert set(again.by_id) == {first.current}
    assert again.open(sealed, HERE) == SECRET  # another process, same keys: it opens


def test_after_rotation_new_values_use_the_new_key_and_old_ones_still_open(tmp_path):
    keys_dir = tmp_path / "data-keys"
    before = load_data_keys(keys_dir)
    old = before.seal(SECRET, HERE)

    rotated = new_data_key(keys_dir)
    twice = new_data_key(keys_dir)
    after = load_data_keys(keys_dir)
    assert len({old.key_id, rotated, twice}) == 3
    assert after.current == twice
    assert set(after.by_id) == {old.key_id, rotated, twice}

    new = after.seal(b"new", HERE)
    assert new.key_id == twice
    assert after.open(old, HERE) == SECRET
    assert independently_opened(material(keys_dir, twice), new.blob, HERE) == b"new"
    with pytest.raises(SealError):  # the process loaded before the rotation cannot open it
        before.open(new, HERE)


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_a_key_that_is_not_256_bits_is_refused(tmp_path, size):
    keys_dir = tmp_path / "data-keys"
    good = new_data_key(keys_dir)
    (keys_dir / "short.key").write_bytes(base64.b64encode(bytes(range(size))))
    with pytest.raises(ValueError, match=r"short\.key is not 256 bits"):
        load_data_keys(keys_dir)
    assert (keys_dir / "current").read_text() == good  # refused, not replaced


def test_a_current_key_without_its_file_is_refused(tmp_path):
    keys_dir = tmp_path / "data-keys"
    key_id = new_data_key(keys_dir)
    (keys_dir / f"{key_id}.key").unlink()
    with pytest.raises(ValueError, match="has no key file"):
        load_data_keys(keys_dir)
