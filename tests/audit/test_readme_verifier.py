"""The README's code for auditors runs, as printed, against notes and proofs this code makes.

It is an independent verifier (hashlib and cryptography only), so it also checks app/checkpoint
and app/merkle against what an auditor would write from the specifications.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.checkpoint import sign_checkpoint, verifier_key
from app.audit.merkle import inclusion_proof, root_hash, subtree_hasher
from app.audit.merkle import leaf_hash as our_leaf_hash
from app.wire.canonical import canonical_json
from tests.helpers.readme import python_blocks, section

ORIGIN = "nps-exchange.example/log"
AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def auditor() -> dict[str, Any]:
    blocks = python_blocks()
    assert len(blocks) == 1
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


def test_it_needs_only_hashlib_and_cryptography() -> None:
    imported = set()
    for node in ast.walk(ast.parse(python_blocks()[0])):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"base64", "hashlib", "cryptography"}


def test_the_readmes_example_note_verifies_under_its_example_key(auditor: dict[str, Any]) -> None:
    text = section()
    note = re.search(r"```\n(nps-exchange\.example/log\n.*?\n)```", text, flags=re.DOTALL)
    vkey = re.search(r"`(nps-exchange\.example/log\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+)`", text)
    assert note and vkey
    size, root = auditor["verify_checkpoint"](note.group(1), vkey.group(1))
    assert size == 1042 and len(root) == 32


ENTRIES = [
    {"sequence": i, "action": "disclosure.created", "notice_id": f"n-{i}", "fields": ["a", "b"]}
    for i in range(13)
]


def test_a_checkpoint_and_every_inclusion_proof(auditor: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.generate()
    leaves = [our_leaf_hash(canonical_json(entry)) for entry in ENTRIES]
    size = len(leaves)
    note = sign_checkpoint(key, ORIGIN, size, root=root_hash(leaves), time=AT)

    verified_size, root = auditor["verify_checkpoint"](note, verifier_key(ORIGIN, key.public_key()))
    assert verified_size == size

    for index, entry in enumerate(ENTRIES):
        # the README's way of hashing an entry, with the standard library's json
        canonical = auditor_json(entry)
        leaf = auditor["leaf_hash"](canonical)
        assert leaf == leaves[index]
        path = inclusion_proof(index, size, subtree_hasher(leaves))
        assert auditor["verify_inclusion"](leaf, index, size, path, root)
        assert not auditor["verify_inclusion"](leaf, (index + 1) % size, size, path, root)
        assert not auditor["verify_inclusion"](leaf, index, size, path[:-1], root)
        assert not auditor["verify_inclusion"](leaf, index, size, [*path, root], root)
        assert not auditor["verify_inclusion"](leaf, size, size, path, root)


def auditor_json(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_with_a_plus_in_its_vkey() -> Ed25519PrivateKey:
    for seed in range(256):
        key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        if "+" in verifier_key(ORIGIN, key.public_key()).split("+", 2)[2]:
            return key
    raise AssertionError("no such key among the seeds tried")


def test_a_verifier_key_whose_base64_holds_a_plus(auditor: dict[str, Any]) -> None:
    key = key_with_a_plus_in_its_vkey()
    note = sign_checkpoint(key, ORIGIN, 3, root=bytes(32), time=AT)
    assert auditor["verify_checkpoint"](note, verifier_key(ORIGIN, key.public_key())) == (
        3,
        bytes(32),
    )


def test_it_refuses_what_the_exchange_refuses(auditor: dict[str, Any]) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    vkey = verifier_key(ORIGIN, key.public_key())
    note = sign_checkpoint(key, ORIGIN, 7, root=bytes(32), time=AT)
    with pytest.raises(InvalidSignature):
        auditor["verify_checkpoint"](note.replace("\n7\n", "\n8\n"), vkey)
    with pytest.raises(ValueError, match="no signature by this key"):
        auditor["verify_checkpoint"](
            sign_checkpoint(other, ORIGIN, 7, root=bytes(32), time=AT), vkey
        )
    with pytest.raises(ValueError, match="not of"):
        auditor["verify_checkpoint"](
            sign_checkpoint(key, "elsewhere/log", 7, root=bytes(32), time=AT, key_name=ORIGIN), vkey
        )
    name, key_id, encoded = vkey.split("+", 2)
    with pytest.raises(ValueError, match="verifier key"):
        auditor["verify_checkpoint"](note, f"{name}+{key_id[::-1]}+{encoded}")
