"""The browser verifier (app/console/static/verify.mjs) under Node's WebCrypto, no browser: it
refuses every checkpoint the Python verifier (app/audit/checkpoint.py parse_and_verify)
refuses, each correctly signed (another log's origin, more than four lines, a root not 32
bytes or not canonical base64, any "time ..." text, a leading zero, a control character); and
it notices a rewritten log: having verified an entry under one root, it refuses another root
for the same tree size (the exchange signs its own checkpoints, so a signature alone proves
only that the server signed that tree)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from app.audit import merkle

ROOT = Path(__file__).resolve().parents[3]


def _run(script: str, given: object = None) -> object:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing")
    path = Path(__file__).with_name(script)
    done = subprocess.run(
        [node, str(path), str(ROOT)],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_browser_refuses_what_the_python_verifier_refuses():
    found = _run("verifier_origin.mjs")
    assert found.pop("good")["accepted"]
    accepted = {label: r for label, r in found.items() if r["accepted"]}
    assert not accepted, f"verify.mjs accepts checkpoints the Python verifier refuses: {accepted}"
    assert "another log" in found["another_origin"]["why"]


def test_a_rewritten_entry_after_verification_is_not_verified_again():
    first, second = _run("verifier_rewritten_log.mjs")
    assert first["verified"]
    assert not second["verified"], (
        f"two histories of one log, both verified: {first['actor']} under {first['root']}; "
        f"then {second['actor']} under {second['root']}"
    )
    assert second["last"][1] is False and "rewritten" in second["last"][2]


def test_the_browsers_consistency_check_agrees_with_the_exchanges():
    """Every proof the exchange makes between two sizes of a 13-leaf tree verifies in the
    browser; the same proof against another first root, or for other sizes, does not."""
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(13)]
    hasher = merkle.subtree_hasher(leaves)

    def case(first, second, *, first_root=None, proof_of=None):
        proof = merkle.consistency_proof(*(proof_of or (first, second)), hasher)
        return {
            "first": first,
            "second": second,
            "first_root": _b64(first_root or merkle.root_hash(leaves[:first])),
            "second_root": _b64(merkle.root_hash(leaves[:second])),
            "hashes": [_b64(h) for h in proof],
        }

    pairs = [(f, s) for s in range(2, 14) for f in range(1, s)]
    good = [case(f, s) for f, s in pairs]
    forged = merkle.root_hash(leaves[1:3])
    bad = [case(f, s, first_root=forged) for f, s in pairs if f == 2] + [
        case(3, 7, proof_of=(4, 7)),
        case(5, 13, proof_of=(5, 12)),
    ]
    found = _run("verifier_consistency.mjs", good + bad)
    verified = found[: len(good)]
    assert all(verified), [p for p, ok in zip(pairs, verified, strict=True) if not ok]
    assert found[len(good) :] == [False] * len(bad)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
